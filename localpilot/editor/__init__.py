"""Editor and agent front-ends over stdio: an LSP server (pygls) and an MCP server (the mcp SDK)."""
