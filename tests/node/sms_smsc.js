// An independent operator SMSC for the several-operators interop test
// (tests/operators_node.rs), built on node-smpp: it listens as an SMSC, and
// once the ESME binds it delivers one SMS `ВХОД*CODE` (UCS2) from PHONE and
// reports every submit_sm it reads (the reply among them).
// Usage: node sms_smsc.js PORT CODE PHONE   (PORT 0: any free port on 127.0.0.1)
// Prints on stdout: "PORT n", "BIND id", "MO acked STATUS", "SMS {json}" per submit_sm.
'use strict';

const smpp = require('smpp');

const port = Number(process.argv[2] || 0);
const code = String(process.argv[3] || '');
const phone = String(process.argv[4] || '79991234567');
let nextId = 1;

function say(line) {
  process.stdout.write(line + '\n');
}

function ucs2(text) {
  const buf = Buffer.alloc(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    buf.writeUInt16BE(text.charCodeAt(i), i * 2);
  }
  return buf;
}

const server = smpp.createServer({}, (session) => {
  session.on('error', () => {});
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    session.close();
  });
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== 'nodegw' || pdu.password !== 'nodepw') {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      return;
    }
    session.send(pdu.response({ system_id: 'node-smsc' }));
    say('BIND ' + pdu.system_id);
    session.deliver_sm({
      source_addr_ton: 1,
      source_addr_npi: 1,
      source_addr: phone,
      destination_addr: '7377',
      data_coding: 0x08,
      short_message: ucs2('ВХОД*' + code),
    }, (resp) => say('MO acked ' + resp.command_status));
  });
  session.on('submit_sm', (pdu) => {
    session.send(pdu.response({ message_id: 'n' + String(nextId++) }));
    let text = '';
    const sm = pdu.short_message || {};
    const body = sm.message;
    if (typeof body === 'string') {
      text = body;
    } else if (Buffer.isBuffer(body)) {
      // UCS2 (data_coding 8) read as UTF-16BE.
      for (let i = 0; i + 1 < body.length; i += 2) {
        text += String.fromCharCode(body.readUInt16BE(i));
      }
    }
    say('SMS ' + JSON.stringify({ to: pdu.destination_addr, text: text, data_coding: pdu.data_coding }));
  });
});

server.listen(port, '127.0.0.1', () => say('PORT ' + server.address().port));
