// An independent SMSC for smsc-link's interop test, built on node-smpp.
// Usage: node server.js [PORT]   (0 or absent: any free port on 127.0.0.1)
// Prints one line per event on stdout: "PORT n", "BIND id", "MO_RESP status",
// "SUBMIT {json}", "RECEIPT_RESP status".
'use strict';

const smpp = require('smpp');

const port = Number(process.argv[2] || 0);
let nextId = 0xabcd;

function say(line) {
  process.stdout.write(line + '\n');
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
    session.send(pdu.response({ system_id: 'node-smsc' }));
    say('BIND ' + pdu.system_id);
    // An MO in UCS2, from an international number to the short code.
    session.deliver_sm({
      source_addr_ton: 1,
      source_addr_npi: 1,
      source_addr: '79161234567',
      destination_addr: '7377',
      data_coding: 8,
      short_message: { message: 'ВХОД*123-456-789' },
    }, (resp) => say('MO_RESP ' + resp.command_status));
  });
  session.on('submit_sm', (pdu) => {
    const id = (nextId++).toString(16).toUpperCase().padStart(8, '0');
    session.send(pdu.response({ message_id: id }));
    const sm = pdu.short_message || {};
    const text = typeof sm.message === 'string' ? sm.message : String(sm.message || '');
    say('SUBMIT ' + JSON.stringify({
      to: pdu.destination_addr,
      from: pdu.source_addr,
      data_coding: pdu.data_coding,
      text: text,
      registered_delivery: pdu.registered_delivery,
      id: id,
    }));
    if (pdu.registered_delivery) {
      const receipt = 'id:' + id + ' sub:001 dlvrd:001 submit date:2611271430 ' +
        'done date:2611271431 stat:DELIVRD err:000 text:';
      session.deliver_sm({
        source_addr_ton: pdu.dest_addr_ton,
        source_addr_npi: pdu.dest_addr_npi,
        source_addr: pdu.destination_addr,
        destination_addr: pdu.source_addr,
        esm_class: 4,
        short_message: { message: receipt },
        receipted_message_id: id,
        message_state: 2,
      }, (resp) => say('RECEIPT_RESP ' + resp.command_status));
    }
  });
});

server.listen(port, '127.0.0.1', () => say('PORT ' + server.address().port));
