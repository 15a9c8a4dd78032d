// An independent operator USSD gateway for the gateway's interop test
// (tests/ussd_node.rs), built on node-smpp: it listens as an SMSC, and once
// the ESME binds it dials `*7377*CODE#` (one-shot) and then `*7377#`,
// answering the question with CODE (the menu), as deliver_sm with
// ussd_service_op and its_session_info, and reads the screens.
// Usage: node ussd_gateway.js PORT CODE   (PORT 0: any free port on 127.0.0.1)
// Prints on stdout: "PORT n", "BIND id", "SCREEN {json}" per USSD submit_sm,
// "SMS {json}" per other submit_sm, "DONE" after the last screen.
'use strict';

const smpp = require('smpp');

const port = Number(process.argv[2] || 0);
const code = String(process.argv[3] || '');
let nextId = 1;

function say(line) {
  process.stdout.write(line + '\n');
}

// Each dialog: a phone, a session number, what is dialled, then answered.
const dialogs = [
  { phone: '79161234567', session: 1, dial: '*7377*' + code + '#', answers: [] },
  { phone: '79161234568', session: 2, dial: '*7377#', answers: [code] },
];

function deliver(session, dialog, op, sequence, text) {
  session.deliver_sm({
    service_type: 'USSD',
    source_addr_ton: 1,
    source_addr_npi: 1,
    source_addr: dialog.phone,
    destination_addr: '7377',
    data_coding: 0x0f,
    short_message: Buffer.from(text, 'ascii'),
    ussd_service_op: op,
    its_session_info: Buffer.from([dialog.session, sequence << 1]),
  }, (resp) => {
    if (resp.command_status !== 0) {
      say('REFUSED ' + resp.command_status);
    }
  });
}

function start(session, index) {
  if (index >= dialogs.length) {
    say('DONE');
    return;
  }
  const dialog = dialogs[index];
  dialog.index = index;
  dialog.sequence = 0;
  deliver(session, dialog, 1, 0, dialog.dial); // PSSR indication
}

const server = smpp.createServer({}, (session) => {
  session.on('error', () => {});
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    session.close();
  });
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== 'checkin' || pdu.password !== 'checkin') {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      return;
    }
    session.send(pdu.response({ system_id: 'node-ussd' }));
    say('BIND ' + pdu.system_id);
    start(session, 0);
  });
  session.on('submit_sm', (pdu) => {
    session.send(pdu.response({ message_id: String(nextId++) }));
    const sm = pdu.short_message || {};
    const text = typeof sm.message === 'string' ? sm.message : String(sm.message || '');
    if (pdu.ussd_service_op === undefined) {
      say('SMS ' + JSON.stringify({ to: pdu.destination_addr, text: text }));
      return;
    }
    const its = pdu.its_session_info ? Array.from(pdu.its_session_info) : null;
    say('SCREEN ' + JSON.stringify({
      to: pdu.destination_addr,
      from: pdu.source_addr,
      service_type: pdu.service_type,
      data_coding: pdu.data_coding,
      ussd_service_op: pdu.ussd_service_op,
      its_session_info: its,
      text: text,
    }));
    const dialog = dialogs.find((d) => d.phone === pdu.destination_addr && its && its[0] === d.session);
    if (!dialog) {
      say('UNMATCHED ' + pdu.destination_addr);
      return;
    }
    if (pdu.ussd_service_op === 2 && dialog.answers.length) {
      // USSR request: the user answers (USSR confirm), next sequence.
      dialog.sequence = (its[1] >> 1) + 1;
      deliver(session, dialog, 18, dialog.sequence, dialog.answers.shift());
    } else {
      start(session, dialog.index + 1);
    }
  });
});

server.listen(port, '127.0.0.1', () => say('PORT ' + server.address().port));
