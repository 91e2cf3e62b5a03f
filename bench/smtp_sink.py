"""aiosmtpd handler for bench/mobile_text.sh: appends "RECIPIENT CODE" per received mail.

python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_sink.CodeSink CODES_FILE   (PYTHONPATH=bench)
"""
import re

CODE = re.compile(rb"code is (\d+)")


class CodeSink:
    def __init__(self, path):
        self.out = open(path, "a", buffering=1)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("CodeSink takes the codes file")
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        m = CODE.search(envelope.original_content or envelope.content)
        if m:
            for rcpt in envelope.rcpt_tos:
                self.out.write(f"{rcpt} {m.group(1).decode()}\n")
        return "250 OK"
