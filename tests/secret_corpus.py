"""A repository's worth of secrets in the shapes real code and config hold them (48 shapes, 19 file kinds).

Values are made at run time from a seeded generator, so this file holds no key-shaped string itself (no scanner
flags the repository, and no test can pass by matching a value written here).
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass


@dataclass(frozen=True)
class Corpus:
    files: dict[str, str]
    secrets: list[str]  # every value that must never be stored, embedded, prompted or shown


class _Maker:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.secrets: list[str] = []

    def keep(self, value: str) -> str:
        self.secrets.append(value)
        return value

    def chars(self, alphabet: str, n: int) -> str:
        return self.keep("".join(self.rng.choice(alphabet) for _ in range(n)))

    def hex(self, n: int) -> str:
        return self.chars("0123456789abcdef", n)

    def b64(self, n: int) -> str:
        return self.chars(string.ascii_letters + string.digits + "+/", n)

    def alnum(self, n: int) -> str:
        return self.chars(string.ascii_letters + string.digits, n)

    def password(self) -> str:
        return self.chars(string.ascii_letters + string.digits + "!#%^*-_", 16)

    def url_password(self) -> str:
        return self.alnum(16)

    def upper(self, n: int) -> str:
        return self.chars(string.ascii_uppercase + string.digits, n)

    def jwt(self) -> str:
        def part(obj: dict[str, object]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

        sub = self.rng.randrange(10**9)
        sig = "".join(
            self.rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(43)
        )
        return self.keep(
            f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': str(sub), 'adm': True})}.{sig}"
        )

    def pem(self) -> tuple[str, str]:
        body = "\n".join(self.b64(64) for _ in range(4))
        return f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----", body.split("\n")[
            0
        ]


def build(seed: int = 7) -> Corpus:
    m = _Maker(seed)
    pem, _ = m.pem()
    rsa, _ = m.pem()
    files = {
        "app/settings.py": (
            "import os\n\n"
            f'AWS_SECRET = "{m.b64(40)}"\n'
            f'AWS_ACCESS_KEY_ID = "AKIA{m.upper(16)}"\n'
            f'DB_PASSWORD = "{m.password()}"\n'
            f'DATABASE_URL = "postgres://app:{m.url_password()}@db.internal:5432/app"\n'
            f'OPENAI_API_KEY = "sk-proj-{m.alnum(48)}"\n'
            f'TWILIO_KEY = "SK{m.hex(32)}"\n'
            f'SIGNING_KEY = """{pem}"""\n'
            'REGION = os.environ.get("AWS_REGION", "eu-west-1")\n'
        ),
        "web/config.js": (
            f'const token = "{m.jwt()}";\n'
            f'const SLACK_WEBHOOK = "https://hooks.slack.com/services/T{m.upper(8)}/B{m.upper(8)}/{m.alnum(24)}";\n'
            f'module.exports = {{ stripe: "sk_live_{m.alnum(24)}", firebase: {{ apiKey: "AIza{m.alnum(35)}" }} }};\n'
        ),
        "web/client.ts": (
            f'export const apiKey: string = "{m.hex(32)}";\n'
            f'const githubToken = "ghp_{m.alnum(36)}";\n'
            "export function headers(): Record<string, string> {\n"
            f'  return {{ Authorization: "Bearer {m.b64(40)}" }};\n}}\n'
        ),
        "svc/keys.go": (
            "package svc\n\n"
            f'const apiKey = "{m.hex(64)}"\n\n'
            "func connect() string {\n"
            f'\tpassword := "{m.password()}"\n'
            '\treturn "user:" + password\n}\n'
        ),
        "core/src/lib.rs": (
            f'const SECRET_KEY: &str = "{m.b64(32)}";\n'
            f'pub fn db() -> &\'static str {{ "mysql://root:{m.url_password()}@localhost/db" }}\n'
        ),
        "src/main/java/App.java": (
            "public class App {\n"
            f'    private static final String PASSWORD = "{m.password()}";\n'
            f'    String clientSecret = "{m.b64(40)}";\n'
            "}\n"
        ),
        "src/Api/Startup.cs": (
            "public class Startup {\n"
            f'    var connectionString = "Server=db;Database=app;User Id=sa;Password={m.password()};";\n'
            f'    const string ApiKey = "{m.hex(40)}";\n'
            "}\n"
        ),
        "config/initializers/secrets.rb": (
            f'Rails.application.config.secret_key_base = "{m.hex(128)}"\n'
            f'SENDGRID = "SG.{m.alnum(22)}.{m.alnum(43)}"\n'
        ),
        "public/wp-config.php": (
            f"<?php\n$db_password = '{m.password()}';\ndefine('AUTH_KEY', '{m.b64(64)}');\n"
        ),
        "scripts/deploy.sh": (
            "#!/bin/sh\n"
            f"export GITHUB_TOKEN=ghp_{m.alnum(36)}\n"
            f"curl -s https://deploy:{m.url_password()}@ci.example.com/hook\n"
        ),
        "deploy/values.yaml": (
            f'database:\n  password: {m.password()}\n  api_key: "{m.hex(32)}"\n'
        ),
        "deploy/service-account.json": json.dumps(
            {
                "type": "service_account",
                "project_id": "demo-project",
                "private_key_id": m.hex(40),
                "private_key": rsa + "\n",
                "client_email": "ci@demo-project.iam.gserviceaccount.com",
            },
            indent=2,
        )
        + "\n",
        "web/.npmconfig.json": json.dumps({"npmToken": f"npm_{m.alnum(36)}"}) + "\n",
        "pyproject.toml": (
            "[tool.app]\n"
            f'password = "{m.password()}"\n'
            f'slack_token = "xoxb-{m.chars(string.digits, 12)}-{m.chars(string.digits, 13)}-{m.alnum(24)}"\n'
            f'pypi_token = "pypi-AgEIcHlwaS5vcmc{m.alnum(60)}"\n'
        ),
        "config/app.ini": (f"[database]\npassword = {m.password()}\nsecret_key = {m.b64(40)}\n"),
        ".env.production": f"SECRET_KEY={m.b64(40)}\nSTRIPE_SECRET=sk_live_{m.alnum(24)}\n",
        ".env.local": f"DB_PASSWORD={m.password()}\n",
        "Dockerfile": (
            "FROM python:3.11-slim\n"
            f"ENV DB_PASSWORD={m.password()}\n"
            f"ARG NPM_TOKEN=npm_{m.alnum(36)}\n"
            'CMD ["python", "-m", "app"]\n'
        ),
        ".github/workflows/ci.yml": (
            "name: ci\non: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    env:\n"
            f"      API_KEY: {m.hex(40)}\n"
            f"      DOCKER_PASSWORD: {m.password()}\n"
            "    steps:\n      - run: make test\n"
        ),
        ".gitlab-ci.yml": (
            "variables:\n"
            f"  AWS_SECRET_ACCESS_KEY: {m.b64(40)}\n"
            f"  SENTRY_AUTH_KEY: {m.hex(64)}\n"
            "test:\n  script: make test\n"
        ),
        "tests/test_client.py": (  # test files keep their secrets' redaction (only test data is spared)
            f'API_TOKEN = "{m.hex(40)}"\n\n\ndef test_login(client):\n'
            f'    assert client.login(password="{m.password()}")\n'
        ),
        "app/clients.py": (
            "def client():\n"
            f'    return Client(password="{m.password()}", api_key="{m.alnum(32)}")\n'
        ),
    }
    return Corpus(files, m.secrets)


def leaks(data: bytes, secrets: list[str]) -> list[str]:
    """The secrets (or a long piece of one) found in ``data``, in any letter case."""
    low = data.lower()
    found = []
    for s in secrets:
        pieces = {s} | ({s[:16], s[-16:]} if len(s) >= 24 else set())
        if any(p.encode().lower() in low for p in pieces):
            found.append(s)
    return found
