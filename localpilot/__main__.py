from localpilot.cli import main

raise SystemExit(main())
