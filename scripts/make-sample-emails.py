#!/usr/bin/env python3
"""Builds the sample claim emails in examples/inbox/ from examples/inbox/sources/.

The bodies are the prototype's public fixtures (synthetic people and amounts); the
receipts are the prototype's clinic receipt and two scanned receipts from the SROIE
dev split. Output is deterministic (fixed dates and Message-IDs), so re-running the
script changes nothing unless the sources change.

    python3 scripts/make-sample-emails.py [OUT_DIR]
"""
import struct
import sys
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from datetime import datetime, timezone, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "examples" / "inbox" / "sources"
MYT = timezone(timedelta(hours=8))


def message(n, subject, body, sender, html=None):
    m = EmailMessage(policy=SMTP)
    m["From"] = sender
    m["To"] = "claims@tpa.example.my"
    m["Subject"] = subject
    m["Date"] = format_datetime(datetime(2024, 12, 27, 9, n, 0, tzinfo=MYT))
    m["Message-ID"] = f"<sample-{n:02d}@docpipe.example>"
    if body is not None:
        m.set_content(body)
    if html is not None:
        if body is None:
            m.set_content(html, subtype="html")  # HTML only: docpipe converts it to text
        else:
            m.add_alternative(html, subtype="html")
    return m


def fixed_boundaries(m, n):
    """Boundaries are random by default; fixed ones keep the files byte-for-byte stable."""
    for i, part in enumerate(m.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_docpipe_sample_{n}_{i}")
    return m.as_bytes()


def attach(m, path, name=None, maintype="image", subtype="jpeg", copy_of=None):
    data = path.read_bytes()
    if copy_of:
        # Another member's scan of the same receipt: the same picture, other bytes (a JPEG
        # comment after SOI). The pipelines skip a byte-identical attachment as a duplicate
        # (transform.dedup), which these samples are not meant to show.
        comment = copy_of.encode()
        data = data[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + data[2:]
    m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name or path.name)


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "examples" / "inbox"
    out.mkdir(parents=True, exist_ok=True)
    read = lambda name: (SOURCES / name).read_text(encoding="utf-8")
    clinic = SOURCES / "malaysian_receipt_test.jpg"

    # 1. The clinic receipt with a short labelled body that agrees with it: high confidence.
    m = message(1, "Claim submission - Ahmad bin Abdullah",
                "Dear Claims Department,\n\nPlease find my clinic receipt attached.\n\n"
                "Member ID: MEM123456789\nPolicy No: POL987654321\nReceipt Number: INV-2024-001234\n"
                "Total Amount: RM 479.05\n\nThank you,\nAhmad bin Abdullah\n",
                "Ahmad bin Abdullah <ahmad@example.my>")
    attach(m, clinic)
    (out / "01-clinic-receipt.eml").write_bytes(fixed_boundaries(m, 0))

    # 2. Malay conversational body with two shop receipts: the body's amounts are not the
    #    receipts', so the claims are flagged for review with the conflict named.
    m = message(2, "Tuntutan perubatan - Kamal", read("conversational_malay.txt"), "Kamal bin Razak <kamal@example.my>")
    attach(m, SOURCES / "receipt-lianhing.jpg", "resit 1.jpg")
    attach(m, SOURCES / "receipt-unihakka.jpg", "resit 2.jpg")
    (out / "02-malay-two-receipts.eml").write_bytes(fixed_boundaries(m, 0))

    # 3. HTML body (Gleneagles claim) with the clinic receipt forwarded inside another email.
    inner = message(3, "Fwd: receipt", "Receipt attached.\n", "Raj Kumar <raj@example.my>")
    attach(inner, clinic, "scan_0001.jpg", copy_of="docpipe sample 03")
    m = message(4, "Fwd: Medical claim - Raj Kumar a/l Subramaniam", None,
                "Raj Kumar <raj@example.my>", html=read("html_formatted.html"))
    m.add_attachment(inner)
    (out / "03-html-forwarded.eml").write_bytes(fixed_boundaries(m, 0))

    # 4. A claim email that forgot its attachment: recorded as skipped, not failed.
    m = message(5, "Claim for M12345", read("structured_english.txt"), "Ahmad bin Abdullah <ahmad@example.my>")
    (out / "04-no-attachment.eml").write_bytes(fixed_boundaries(m, 0))

    # 5. Chinese/English body, non-ASCII subject (RFC 2047) and file name (RFC 2231).
    m = message(6, "理赔申请 Claim - 陈美玲", read("mixed_language.txt"), "Chen Mei Ling <meiling@example.my>")
    attach(m, clinic, "收据 receipt.jpg", copy_of="docpipe sample 05")
    (out / "05-mixed-language.eml").write_bytes(fixed_boundaries(m, 0))
    print(f"wrote 5 sample emails to {out}")


if __name__ == "__main__":
    main()
