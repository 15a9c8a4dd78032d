"""Interop ESME built on the independent PyPI client `smpplib`.

Binds to the simulator, receives an injected Cyrillic MO and checks its
exact text, submits a 3-part UCS2 reply with receipts requested, checks that
`GET /api/messages` shows it reassembled, and waits for the receipts.
Exits 0 on success; any failed check raises (exit 1).
"""

import argparse
import json
import sys
import threading
import time
import urllib.parse
import urllib.request

import smpplib.client
import smpplib.consts
import smpplib.gsm

PHONE = "+79161234567"
MO_TEXT = "ВХОД*123-456-789"
REPLY = ("Вы отметились по адресу: Москва, Тверская ул., д. 7. "
         "При выявлении случая заражения среди посетителей вам придёт SMS. "
         "Берегите себя и близких!")


def http(port, method, path, body=None):
    data = json.dumps(body).encode("utf-8") if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read().decode("utf-8"))


def decode(pdu):
    raw = pdu.short_message
    if pdu.data_coding == smpplib.consts.SMPP_ENCODING_ISO10646:
        return raw.decode("utf-16-be")
    return raw.decode("latin-1")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smpp-port", type=int, required=True)
    ap.add_argument("--http-port", type=int, required=True)
    args = ap.parse_args()

    client = smpplib.client.Client("127.0.0.1", args.smpp_port, timeout=20)
    mos, receipts, message_ids = [], [], []

    def received(pdu, **_):
        if pdu.esm_class & 0x04:  # MC delivery receipt
            receipts.append(pdu)
        else:
            mos.append(pdu)
        return smpplib.consts.SMPP_ESME_ROK

    def sent(pdu, **_):
        message_ids.append(pdu.message_id.decode("ascii"))

    client.set_message_received_handler(received)
    client.set_message_sent_handler(sent)
    client.connect()
    client.bind_transceiver(system_id="checkin", password="checkin")

    # Inject the MO from another thread: POST /api/mo answers only after our
    # deliver_sm_resp, which this thread sends while reading.
    mo_answer = {}
    injector = threading.Thread(target=lambda: mo_answer.update(
        http(args.http_port, "POST", "/api/mo",
             {"from": PHONE, "to": "7377", "text": MO_TEXT, "encoding": "ucs2"})))
    injector.start()
    deadline = time.time() + 20
    while not mos and time.time() < deadline:
        client.read_once()
    injector.join(20)
    assert mos, "no MO received"
    mo = mos[0]
    assert decode(mo) == MO_TEXT, f"MO text {decode(mo)!r}"
    assert mo.source_addr.decode() == PHONE.lstrip("+"), mo.source_addr
    assert mo.destination_addr.decode() == "7377", mo.destination_addr
    assert mo_answer.get("status") == "ESME_ROK", mo_answer
    assert mo_answer.get("attempts") == 1, mo_answer

    # The 3-part UCS2 reply, UDH concatenation, receipts requested.
    parts, encoding, esm_class = smpplib.gsm.make_parts(REPLY, encoding=smpplib.consts.SMPP_ENCODING_ISO10646)
    assert len(parts) == 3, f"{len(parts)} parts"
    for part in parts:
        client.send_message(
            source_addr_ton=smpplib.consts.SMPP_TON_SBSCR,
            source_addr="7377",
            dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
            destination_addr=PHONE.lstrip("+"),
            short_message=part,
            data_coding=encoding,
            esm_class=esm_class,
            registered_delivery=True,
        )
    deadline = time.time() + 20
    while (len(message_ids) < 3 or len(receipts) < 3) and time.time() < deadline:
        client.read_once()
    assert len(message_ids) == 3, message_ids
    assert len(receipts) == 3, f"{len(receipts)} receipts"
    for receipt in receipts:
        text = receipt.short_message.decode("ascii")
        rid = receipt.receipted_message_id.decode("ascii").rstrip("\0")
        assert rid in message_ids, (rid, message_ids)
        assert text.startswith(f"id:{rid} sub:001 dlvrd:001 submit date:"), text
        assert "stat:DELIVRD err:000" in text, text
        assert int(receipt.message_state) == smpplib.consts.SMPP_MESSAGE_STATE_DELIVERED

    listed = http(args.http_port, "GET", "/api/messages?to=" + urllib.parse.quote(PHONE))["messages"]
    assert len(listed) == 1, listed
    message = listed[0]
    assert message["text"] == REPLY, message["text"]
    assert message["complete"] is True and message["parts_total"] == 3, message
    assert message["encoding"] == "ucs2", message
    assert message["receipt"] == "DELIVRD", message

    client.unbind()
    client.disconnect()
    print("interop ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
