"""aiosmtpd server for smtp-testkit (started by `Aiosmtpd::start`, not by hand).

Usage: python3 aiosmtpd_server.py DIR

Reads DIR/config.json, listens on 127.0.0.1 on a port chosen by the kernel, writes
that port to DIR/port (atomically) once it accepts connections, and stores every
accepted message as DIR/messages/NNNNNN.msg: one line of JSON (the envelope), a
newline, then `envelope.original_content` byte for byte.

Exits with status 3 if aiosmtpd cannot be imported. Exits when its stdin reaches
EOF (the test process closed it or died), removing DIR first.
"""

import sys

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError as e:  # reported as StartError::Missing by the Rust side
    print(f"cannot import aiosmtpd: {e}", file=sys.stderr)
    sys.exit(3)

import asyncio
import json
import os
import shutil
import socket
import ssl
import threading

DIR = sys.argv[1]
with open(os.path.join(DIR, "config.json"), encoding="utf-8") as f:
    CONFIG = json.load(f)
MESSAGES = os.path.join(DIR, "messages")
os.makedirs(MESSAGES, exist_ok=True)

REFUSALS = (
    ("reject", "550 5.1.1 no such user"),
    ("tempfail", "451 4.3.0 try later"),
    ("full", "552 5.2.2 mailbox full"),
)


class Handler:
    def __init__(self):
        self.count = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if CONFIG["auth"] is None:
            # aiosmtpd offers its built-in mechanisms unless told otherwise.
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.rsplit("@", 1)[0].lower()
        for prefix, reply in REFUSALS:
            if local.startswith(prefix):
                return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        meta = {
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "rcpt_options": envelope.rcpt_options,
            "smtp_utf8": envelope.smtp_utf8,
            "tls": session.ssl is not None or CONFIG["implicit_tls"],
            "authenticated": bool(session.authenticated),
        }
        name = os.path.join(MESSAGES, "%06d.msg" % self.count)
        with open(name + ".tmp", "wb") as out:
            out.write(json.dumps(meta).encode("utf-8"))
            out.write(b"\n")
            out.write(envelope.original_content)
        os.rename(name + ".tmp", name)
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword):
        user, password = CONFIG["auth"]
        if auth_data.login == user.encode() and auth_data.password == password.encode():
            return AuthResult(success=True)
    return AuthResult(success=False, handled=False)


def watchdog():
    sys.stdin.buffer.read()  # returns at EOF: the parent closed the pipe or died
    shutil.rmtree(DIR, ignore_errors=True)
    os._exit(0)


def main():
    tls = None
    if CONFIG["starttls"] or CONFIG["implicit_tls"]:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(os.path.join(DIR, "server.pem"), os.path.join(DIR, "server.key"))
    handler = Handler()
    auth = CONFIG["auth"] is not None
    # With implicit TLS every session is encrypted, but aiosmtpd only knows about
    # STARTTLS: tell it not to insist.
    require_tls = CONFIG["auth_require_tls"] and not CONFIG["implicit_tls"]

    def factory():
        return SMTP(
            handler,
            hostname="localhost",
            ident="smtp-testkit aiosmtpd",
            enable_SMTPUTF8=True,
            tls_context=tls if CONFIG["starttls"] else None,
            authenticator=authenticator,
            auth_required=auth,
            auth_require_tls=require_tls,
            loop=loop,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = loop.run_until_complete(
        loop.create_server(
            factory, sock=sock, ssl=tls if CONFIG["implicit_tls"] else None, backlog=128
        )
    )
    port = server.sockets[0].getsockname()[1]
    with open(os.path.join(DIR, "port.tmp"), "w") as f:
        f.write(str(port))
    os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
    threading.Thread(target=watchdog, daemon=True).start()
    loop.run_forever()


main()
