"""Claim emails for the load test, made at run time from the SROIE receipt scans in
../shared/data (never copied into the project).

Each email: a unique Message-ID, a unique member id in the body ("Member ID: MEM<9 digits>",
the labelled form plugins/claims reads; with no policy number in the email it becomes the
NCB record's "Policy Number"), and one receipt attachment (every `two_every`-th email has
two). No amount, date or receipt number in the body: those come from the receipt's OCR, so
the body can never conflict with it.

With 500 emails over 300 scans most scans are attached to two emails. Each attachment is
made a receipt of its own: a JPEG comment naming its email goes after the scan's SOI marker,
so its bytes differ and the picture does not. Otherwise the second copy would be what
transform.dedup (after transform.mime, per attachment) rightly skips: the same receipt file
sent again, which the load test does not measure. (A resubmission is tested in
tests/e2e/claims_local.sh and tests/integration/dedup_test.cpp.)
"""

import glob
import os
import random
import struct
from email.message import EmailMessage
from email.utils import format_datetime

DEFAULT_DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data"))


def receipt_images(data_dir):
    """The SROIE scans under data_dir/sroie-{train,dev}/, or else the .jpg files in data_dir
    itself (the smoke test uses the project's own sample receipt: tests must not need
    ../shared/data, which a CI checkout may not have)."""
    images = sorted(glob.glob(os.path.join(data_dir, "sroie-train", "*.jpg")) +
                    glob.glob(os.path.join(data_dir, "sroie-dev", "*.jpg")))
    if not images:
        images = sorted(glob.glob(os.path.join(data_dir, "*.jpg")))
    if not images:
        raise SystemExit(f"load: no receipt scans under {data_dir}/sroie-train or sroie-dev, nor .jpg files in {data_dir} "
                         f"(give --data DIR, the folder holding sroie-train/ and sroie-dev/)")
    return images


def plan(n, images, run_tag, phase_no, seed=17, two_every=10):
    """-> list of email plans [{index, message_id, member_id, name, attachments: [{filename, image}]}].
    Images are used round-robin over a seeded shuffle, so each is used as evenly as possible."""
    rng = random.Random(seed * 100 + phase_no)
    order = images[:]
    rng.shuffle(order)
    pos = 0
    out = []
    for i in range(n):
        count = 2 if two_every and i % two_every == two_every - 1 else 1
        atts = []
        for k in range(count):
            atts.append({"filename": f"receipt-{k + 1}.jpg", "image": order[pos % len(order)]})
            pos += 1
        out.append({
            "index": i,
            "message_id": f"load-{run_tag}-p{phase_no}-{i:05d}@docpipe.load.test",
            "member_id": f"MEM{phase_no}{i:08d}",
            "name": f"claim-{i:05d}.eml",
            "attachments": atts,
        })
    return out


def write(p, path, when):
    m = EmailMessage()
    m["From"] = f"Member {p['index']:05d} <member{p['index']:05d}@members.example.test>"
    m["To"] = "claims@tpa.example.test"
    m["Subject"] = "Claim submission"
    m["Date"] = format_datetime(when)
    m["Message-ID"] = f"<{p['message_id']}>"
    n = len(p["attachments"])
    m.set_content("Dear Claims Department,\n\n"
                  f"Please find my {'receipt' if n == 1 else f'{n} receipts'} attached.\n\n"
                  f"Member ID: {p['member_id']}\n\n"
                  "Thank you.\n")
    for k, a in enumerate(p["attachments"]):
        with open(a["image"], "rb") as f:
            jpeg = f.read()
        mark = f"{p['message_id']} #{k + 1}".encode()
        jpeg = jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(mark) + 2) + mark + jpeg[2:]
        m.add_attachment(jpeg, maintype="image", subtype="jpeg", filename=a["filename"])
    with open(path, "wb") as f:
        f.write(bytes(m))
