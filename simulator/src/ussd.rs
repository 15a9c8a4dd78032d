//! The USSD gateway role: the simulator dials towards bound ESMEs
//! (`deliver_sm` with `ussd_service_op`), waits for the screen the ESME
//! answers with (`submit_sm`, matched by the operator profile's key),
//! forwards the user's answers and aborts, and closes dialogs that time out
//! the way a network does (an abort towards the ESME).
//!
//! Dialogs live in memory, at most `ussd.dialogs_max`, one per MSISDN (a
//! phone has one USSD dialog at a time).

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use rusmpp::{
    pdus::{DeliverSm, SubmitSm},
    tlvs::{MessageDeliveryRequestTlvValue, TlvValue},
    types::{COctetString, OctetString},
    values::{EsmClass, ItsSessionInfo, ServiceType, UserMessageReference, UssdServiceOp},
    CommandStatus,
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::{
    config::{UssdProfile, UssdSessionKey},
    lock,
    pdu::{address, status_name},
    store::digits,
    text::{decode_units, part_units, Encoding},
    Error, Simulator,
};

/// `ussd_service_op` 1: PSSR indication (the user dialled).
pub const PSSR_INDICATION: u8 = 1;
/// `ussd_service_op` 2: USSR request (a question; the dialog continues).
pub const USSR_REQUEST: u8 = 2;
/// `ussd_service_op` 17: PSSR response (the final screen).
pub const PSSR_RESPONSE: u8 = 17;
/// `ussd_service_op` 18: USSR confirm (the user's answer).
pub const USSR_CONFIRM: u8 = 18;

/// Longest dialled string or answer, in characters (a USSD string is at
/// most 182 GSM 7-bit characters).
pub const USSD_TEXT_CHARS_MAX: usize = 182;
/// Longest screen in GSM 7-bit septets (182 fit the 160 octets of a USSD
/// string when packed).
pub const SCREEN_SEPTETS_MAX: usize = 182;
/// Longest screen in octets for the other alphabets (80 UCS2 characters).
pub const SCREEN_OCTETS_MAX: usize = 160;

/// A dial (`POST /api/ussd`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UssdDial {
    /// The phone, e.g. `+79161234567`.
    pub from: String,
    /// What was dialled, e.g. `*7377#` or `*7377*123456789#`.
    pub dial: String,
    /// Operator profile (`its_session_info`, `umr`, `none`, `p2`, or one
    /// of the configuration's); the configured `ussd.profile` when absent.
    #[serde(default)]
    pub profile: Option<String>,
    /// `data_coding` of the dial and the answers; the profile's when absent.
    #[serde(default)]
    pub data_coding: Option<u8>,
    /// Overrides the profile's `split_dial`.
    #[serde(default)]
    pub split_dial: Option<bool>,
}

impl UssdDial {
    /// A dial from `from` with the configured profile.
    pub fn new(from: impl Into<String>, dial: impl Into<String>) -> Self {
        Self {
            from: from.into(),
            dial: dial.into(),
            profile: None,
            data_coding: None,
            split_dial: None,
        }
    }

    /// The same dial with the profile called `name`.
    pub fn with_profile(mut self, name: impl Into<String>) -> Self {
        self.profile = Some(name.into());
        self
    }
}

/// A screen the ESME sent, as the control API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UssdScreen {
    /// Dialog id (`ussd-N`).
    pub dialog: String,
    /// The screen's text, decoded by its `data_coding`.
    pub screen: String,
    /// True for a question (`ussd_service_op` 2): answer it with
    /// `POST /api/ussd/{dialog}`. False for the final screen (17).
    pub continues: bool,
    /// The ESME's `ussd_service_op`.
    pub ussd_service_op: u8,
    /// The ESME's `data_coding`.
    pub data_coding: u8,
    /// From the `deliver_sm` written to the screen received, in ms.
    pub latency_ms: u64,
}

/// The answer to an abort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UssdClosed {
    /// Dialog id.
    pub dialog: String,
    /// Always true: the dialog is closed whatever the ESME answered.
    pub closed: bool,
    /// The ESME's `deliver_sm_resp` status to the abort (`ESME_ROK`),
    /// `NO_ANSWER`, or `NO_RECEIVER` when no ESME was bound.
    pub status: String,
}

/// `data_coding` → alphabet, USSD style: 0x0F is the USSD default
/// (GSM 7-bit, language unspecified); the rest as in SMPP.
pub fn ussd_alphabet(data_coding: u8) -> Option<Encoding> {
    match data_coding {
        0x0F => Some(Encoding::Gsm7),
        other => Encoding::from_data_coding(other).filter(|a| *a != Encoding::Binary),
    }
}

/// `text` as `data_coding` carries it (GSM 7-bit unpacked, one septet per
/// octet, as SMPP writes USSD strings).
pub fn encode_ussd_text(text: &str, data_coding: u8) -> Result<Vec<u8>, Error> {
    let bad = |why: &str| Error::BadRequest(format!("data_coding {data_coding:#04x}: {why}"));
    match ussd_alphabet(data_coding) {
        Some(Encoding::Gsm7) => smpp_text::gsm7::encode(text)
            .ok_or_else(|| bad("a character is outside the GSM 7-bit alphabet")),
        Some(Encoding::Ucs2) => Ok(text.encode_utf16().flat_map(u16::to_be_bytes).collect()),
        Some(Encoding::Latin1) => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).map_err(|_| bad("a character is not Latin-1")))
            .collect(),
        _ => Err(bad("not a text alphabet")),
    }
}

/// The service code of a dialled string and what follows it:
/// `*7377*123#` → (`7377`, `*123#`), `*7377#` → (`7377`, `#`).
pub fn split_dial(dial: &str) -> (String, String) {
    let body = dial.strip_prefix(['*', '#']).unwrap_or(dial);
    let code_len = body.chars().take_while(char::is_ascii_digit).count();
    (body[..code_len].to_string(), body[code_len..].to_string())
}

fn dialog_id(no: u64) -> String {
    format!("ussd-{no}")
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What the PDUs of one dialog carry.
#[derive(Debug, Clone)]
struct Leg {
    from: String,
    service_code: String,
    profile: UssdProfile,
    data_coding: u8,
    its_session: Option<u8>,
    umr: Option<u16>,
    /// `its_session_info` sequence number of the PDU (7 bits).
    sequence: u8,
}

/// A screen on its way from the session to the waiting request.
#[derive(Debug)]
struct Screen {
    text: String,
    continues: bool,
    op: u8,
    data_coding: u8,
}

#[derive(Debug)]
struct Dialog {
    msisdn: String,
    leg: Leg,
    /// Set while a request waits for the ESME's screen.
    waiting: Option<oneshot::Sender<Screen>>,
    /// Bumped at every exchange: an idle timer of an older one does nothing.
    generation: u64,
}

/// Open dialogs (in `Simulator`'s state).
#[derive(Debug, Default)]
pub(crate) struct Dialogs {
    open: HashMap<u64, Dialog>,
    by_msisdn: HashMap<String, u64>,
    its_in_use: HashSet<u8>,
    next_its: u8,
    next_umr: u16,
    /// Dialog numbers handed out: `ussd-N` with N at most this and not open is closed.
    issued: u64,
}

impl Dialogs {
    fn lookup(&self, id: &str) -> Result<u64, Error> {
        let no = id
            .strip_prefix("ussd-")
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| (1..=self.issued).contains(n))
            .ok_or_else(|| Error::DialogNotFound(id.to_string()))?;
        if self.open.contains_key(&no) {
            Ok(no)
        } else {
            Err(Error::DialogClosed(id.to_string()))
        }
    }

    fn remove(&mut self, no: u64) -> Option<Dialog> {
        let dialog = self.open.remove(&no)?;
        self.by_msisdn.remove(&dialog.msisdn);
        if let Some(session) = dialog.leg.its_session {
            self.its_in_use.remove(&session);
        }
        Some(dialog)
    }

    /// Removes the dialog only if a request still waits for its screen
    /// (otherwise the screen is already on its way to that request).
    fn remove_if_waiting(&mut self, no: u64) -> Option<Dialog> {
        match self.open.get(&no) {
            Some(d) if d.waiting.is_some() => self.remove(no),
            _ => None,
        }
    }

    /// Opens a dialog waiting for its first screen.
    fn open(
        &mut self,
        msisdn: String,
        mut leg: Leg,
        dialogs_max: usize,
    ) -> Result<(u64, Leg, oneshot::Receiver<Screen>), Error> {
        if self.by_msisdn.contains_key(&msisdn) {
            return Err(Error::DialogBusy(
                "this number already has a ussd dialog open".into(),
            ));
        }
        if self.open.len() >= dialogs_max {
            return Err(Error::DialogsFull);
        }
        match leg.profile.session_key {
            UssdSessionKey::ItsSessionInfo => {
                // Session numbers unique among open dialogs: an ESME keying
                // on the number alone still finds the right one.
                let free = (0..=u8::MAX)
                    .map(|i| self.next_its.wrapping_add(i))
                    .find(|n| !self.its_in_use.contains(n))
                    .ok_or(Error::DialogsFull)?;
                self.its_in_use.insert(free);
                self.next_its = free.wrapping_add(1);
                leg.its_session = Some(free);
            }
            UssdSessionKey::UserMessageReference => {
                self.next_umr = self.next_umr.wrapping_add(1);
                leg.umr = Some(self.next_umr);
            }
            UssdSessionKey::Msisdn => {}
        }
        self.issued += 1;
        let no = self.issued;
        let (tx, rx) = oneshot::channel();
        self.by_msisdn.insert(msisdn.clone(), no);
        self.open.insert(
            no,
            Dialog {
                msisdn,
                leg: leg.clone(),
                waiting: Some(tx),
                generation: 0,
            },
        );
        Ok((no, leg, rx))
    }
}

/// A `deliver_sm` of a dialog: `ussd_service_op` `op`, the profile's
/// `service_type` and session TLV (`end` sets the end-of-session bit).
fn dialog_pdu(leg: &Leg, op: u8, message: Vec<u8>, end: bool) -> Result<DeliverSm, Error> {
    let (source_ton, source_npi, source) = address(&leg.from)?;
    let (dest_ton, dest_npi, dest) = address(&leg.service_code)?;
    let service_type = COctetString::from_string(leg.profile.service_type.clone())
        .map_err(|_| Error::BadRequest("service_type longer than 5 characters".into()))?;
    let short_message = OctetString::from_vec(message)
        .map_err(|_| Error::BadRequest("ussd string longer than 255 octets".into()))?;
    let mut builder = DeliverSm::builder()
        .service_type(ServiceType::new(service_type))
        .source_addr_ton(source_ton)
        .source_addr_npi(source_npi)
        .source_addr(source)
        .dest_addr_ton(dest_ton)
        .dest_addr_npi(dest_npi)
        .destination_addr(dest)
        .esm_class(EsmClass::from(0x00))
        .data_coding(leg.data_coding.into())
        .short_message(short_message)
        .push_tlv(MessageDeliveryRequestTlvValue::UssdServiceOp(
            UssdServiceOp::from(op),
        ));
    if let Some(session) = leg.its_session {
        let octet2 = ((leg.sequence & 0x7F) << 1) | u8::from(end);
        builder = builder.push_tlv(MessageDeliveryRequestTlvValue::ItsSessionInfo(
            ItsSessionInfo::new(session, octet2),
        ));
    }
    if let Some(umr) = leg.umr {
        builder = builder.push_tlv(MessageDeliveryRequestTlvValue::UserMessageReference(
            UserMessageReference::new(umr),
        ));
    }
    Ok(builder.build())
}

fn check_text(what: &str, text: &str, empty_ok: bool) -> Result<(), Error> {
    let chars = text.chars().count();
    if chars > USSD_TEXT_CHARS_MAX || (chars == 0 && !empty_ok) {
        return Err(Error::BadRequest(format!(
            "{what} must be {}..={USSD_TEXT_CHARS_MAX} characters",
            u8::from(!empty_ok)
        )));
    }
    Ok(())
}

/// True when a `submit_sm` carries `ussd_service_op`: a USSD screen, not an SMS.
pub(crate) fn is_ussd(submit: &SubmitSm) -> bool {
    submit
        .tlvs()
        .iter()
        .any(|t| matches!(t.value(), Some(TlvValue::UssdServiceOp(_))))
}

impl Simulator {
    /// Dials: opens a dialog towards a bound ESME (`deliver_sm` with
    /// `ussd_service_op` 1) and returns its first screen.
    pub async fn ussd_dial(&self, request: UssdDial) -> Result<UssdScreen, Error> {
        if self.inner.stopping.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let cfg = &self.inner.config.ussd;
        let name = request.profile.as_deref().unwrap_or(&cfg.profile);
        let mut profile = cfg
            .profile_named(name)
            .ok_or_else(|| Error::BadRequest(format!("unknown ussd profile {name:?}")))?;
        if let Some(split) = request.split_dial {
            profile.split_dial = split;
        }
        let data_coding = request.data_coding.unwrap_or(profile.data_coding);
        check_text("dial", &request.dial, false)?;
        address(&request.from)?;
        let msisdn = digits(&request.from);
        if msisdn.is_empty() {
            return Err(Error::BadRequest("from must be a phone number".into()));
        }
        let (mut service_code, rest) = split_dial(&request.dial);
        if service_code.is_empty() {
            service_code = self.inner.config.delivery.default_to.clone();
        }
        let text = if profile.split_dial {
            rest
        } else {
            request.dial.clone()
        };
        let message = encode_ussd_text(&text, data_coding)?;
        let leg = Leg {
            from: request.from.clone(),
            service_code,
            profile,
            data_coding,
            its_session: None,
            umr: None,
            sequence: 0,
        };
        let (no, leg, rx) =
            lock(&self.inner.ussd).open(msisdn, leg, self.inner.config.ussd.dialogs_max)?;
        self.inner.stats.update(|s| s.ussd.opened += 1);
        tracing::debug!(dialog = %dialog_id(no), "ussd dialog opened");
        let pdu = match dialog_pdu(&leg, PSSR_INDICATION, message, false) {
            Ok(pdu) => pdu,
            Err(error) => {
                lock(&self.inner.ussd).remove(no);
                return Err(error);
            }
        };
        self.exchange(no, pdu, rx).await
    }

    /// Sends the user's answer (`ussd_service_op` 18) and returns the next screen.
    pub async fn ussd_answer(&self, dialog: &str, answer: &str) -> Result<UssdScreen, Error> {
        if self.inner.stopping.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        check_text("answer", answer, true)?;
        let (no, leg, message, rx) = {
            let mut dialogs = lock(&self.inner.ussd);
            let no = dialogs.lookup(dialog)?;
            let Some(d) = dialogs.open.get_mut(&no) else {
                return Err(Error::DialogClosed(dialog.to_string()));
            };
            if d.waiting.is_some() {
                return Err(Error::DialogBusy(format!(
                    "dialog {dialog} is waiting for the esme's screen"
                )));
            }
            let message = encode_ussd_text(answer, d.leg.data_coding)?;
            let (tx, rx) = oneshot::channel();
            d.waiting = Some(tx);
            d.generation += 1;
            d.leg.sequence = (d.leg.sequence + 1) & 0x7F;
            (no, d.leg.clone(), message, rx)
        };
        self.inner.stats.update(|s| s.ussd.answered += 1);
        let pdu = match dialog_pdu(&leg, USSR_CONFIRM, message, false) {
            Ok(pdu) => pdu,
            Err(error) => {
                lock(&self.inner.ussd).remove(no);
                return Err(error);
            }
        };
        self.exchange(no, pdu, rx).await
    }

    /// Cancels a dialog as the user would: the profile's abort goes to the
    /// ESME and the dialog is closed whatever it answers. A request still
    /// waiting for the dialog's screen gets [`Error::DialogClosed`].
    pub async fn ussd_abort(&self, dialog: &str) -> Result<UssdClosed, Error> {
        let closed = {
            let mut dialogs = lock(&self.inner.ussd);
            let no = dialogs.lookup(dialog)?;
            dialogs.remove(no)
        };
        let Some(closed) = closed else {
            return Err(Error::DialogClosed(dialog.to_string()));
        };
        self.inner.stats.update(|s| s.ussd.aborted += 1);
        tracing::debug!(dialog, "ussd dialog aborted by the user");
        let status = self.send_abort(closed.leg).await;
        Ok(UssdClosed {
            dialog: dialog.to_string(),
            closed: true,
            status,
        })
    }

    /// Open USSD dialogs.
    pub fn ussd_dialogs_open(&self) -> usize {
        lock(&self.inner.ussd).open.len()
    }

    /// Writes a dialog's `deliver_sm` and waits for its screen, in a task of
    /// its own so a caller that goes away does not leave the dialog stuck.
    async fn exchange(
        &self,
        no: u64,
        pdu: DeliverSm,
        rx: oneshot::Receiver<Screen>,
    ) -> Result<UssdScreen, Error> {
        let sim = self.clone();
        self.inner
            .tasks
            .spawn(async move { sim.exchange_in_task(no, pdu, rx).await })
            .await
            .unwrap_or(Err(Error::ShuttingDown))
    }

    async fn exchange_in_task(
        &self,
        no: u64,
        pdu: DeliverSm,
        mut rx: oneshot::Receiver<Screen>,
    ) -> Result<UssdScreen, Error> {
        let answer_timeout = Duration::from_millis(self.inner.config.ussd.answer_timeout_ms);
        let response_timeout =
            Duration::from_millis(self.inner.config.delivery.response_timeout_ms)
                .min(answer_timeout);
        let sent = Instant::now();
        let delivery = self.deliver_with(None, pdu, 1, response_timeout);
        tokio::pin!(delivery);
        let deadline = tokio::time::sleep(answer_timeout);
        tokio::pin!(deadline);
        let (mut acknowledged, mut expired, mut stopping) = (false, false, false);
        loop {
            tokio::select! {
                screen = &mut rx => {
                    let Ok(screen) = screen else {
                        // Aborted while the screen was awaited.
                        return Err(Error::DialogClosed(dialog_id(no)));
                    };
                    return Ok(UssdScreen {
                        dialog: dialog_id(no),
                        screen: screen.text,
                        continues: screen.continues,
                        ussd_service_op: screen.op,
                        data_coding: screen.data_coding,
                        latency_ms: millis(sent.elapsed()),
                    });
                }
                report = &mut delivery, if !acknowledged => {
                    acknowledged = true;
                    let failure = match report {
                        Err(error) => Some(error),
                        Ok(r) if r.status == Some(CommandStatus::EsmeRok) => None,
                        Ok(r) => Some(Error::EsmeRefused(
                            r.status.map_or_else(|| "NO_ANSWER".to_string(), status_name),
                        )),
                    };
                    if let Some(error) = failure {
                        if lock(&self.inner.ussd).remove_if_waiting(no).is_some() {
                            self.inner.stats.update(|s| s.ussd.refused += 1);
                            tracing::debug!(dialog = %dialog_id(no), %error, "ussd dialog refused");
                            return Err(error);
                        }
                        // Otherwise the screen came anyway: take it.
                    }
                }
                _ = &mut deadline, if !expired => {
                    expired = true;
                    let removed = lock(&self.inner.ussd).remove_if_waiting(no);
                    if let Some(dialog) = removed {
                        self.inner.stats.update(|s| s.ussd.timed_out += 1);
                        tracing::debug!(dialog = %dialog_id(no), "no ussd screen in time: aborted");
                        self.spawn_abort(dialog.leg);
                        return Err(Error::NoScreen(dialog_id(no)));
                    }
                }
                _ = self.inner.stopping.cancelled(), if !stopping => {
                    stopping = true;
                    if lock(&self.inner.ussd).remove_if_waiting(no).is_some() {
                        return Err(Error::ShuttingDown);
                    }
                }
            }
        }
    }

    /// Sends the profile's abort and returns the ESME's status name.
    async fn send_abort(&self, mut leg: Leg) -> String {
        leg.sequence = (leg.sequence + 1) & 0x7F;
        let end = leg.profile.abort_end_of_session;
        let pdu = match dialog_pdu(&leg, leg.profile.abort_ussd_service_op, Vec::new(), end) {
            Ok(pdu) => pdu,
            Err(error) => {
                tracing::warn!(%error, "ussd abort not built");
                return "NOT_SENT".into();
            }
        };
        let timeout = Duration::from_millis(self.inner.config.delivery.response_timeout_ms);
        match self.deliver_with(None, pdu, 1, timeout).await {
            Ok(report) => report
                .status
                .map_or_else(|| "NO_ANSWER".to_string(), status_name),
            Err(_) => "NO_RECEIVER".into(),
        }
    }

    fn spawn_abort(&self, leg: Leg) {
        let sim = self.clone();
        self.inner.tasks.spawn(async move {
            sim.send_abort(leg).await;
        });
    }

    /// Closes the dialog if it is still idle at `generation` after
    /// `dialog_timeout_ms`, with an abort towards the ESME.
    fn arm_idle_timer(&self, no: u64, generation: u64) {
        let sim = self.clone();
        let idle = Duration::from_millis(self.inner.config.ussd.dialog_timeout_ms);
        self.inner.tasks.spawn(async move {
            tokio::select! {
                _ = sim.inner.stopping.cancelled() => return,
                _ = tokio::time::sleep(idle) => {}
            }
            let expired = {
                let mut dialogs = lock(&sim.inner.ussd);
                match dialogs.open.get(&no) {
                    Some(d) if d.generation == generation && d.waiting.is_none() => {
                        dialogs.remove(no)
                    }
                    _ => None,
                }
            };
            if let Some(dialog) = expired {
                sim.inner.stats.update(|s| s.ussd.timed_out += 1);
                tracing::debug!(dialog = %dialog_id(no), "ussd dialog idle too long: aborted");
                sim.send_abort(dialog.leg).await;
            }
        });
    }

    /// A USSD `submit_sm` (one with `ussd_service_op`): the screen of the
    /// dialog it matches. The error is the status the submit is answered
    /// with: ESME_RINVTLVVAL for an operation other than 2 or 17,
    /// ESME_RINVDCS / ESME_RINVMSGLEN for a screen that cannot be read or
    /// is too long, ESME_RSUBMITFAIL when no dialog waits for it.
    pub(crate) fn ussd_submit(&self, submit: &SubmitSm) -> Result<(), CommandStatus> {
        let (mut op, mut its, mut umr, mut payload) = (None, None, None, None);
        for tlv in submit.tlvs() {
            match tlv.value() {
                Some(TlvValue::UssdServiceOp(v)) => op = Some(u8::from(*v)),
                Some(TlvValue::ItsSessionInfo(v)) => its = Some(v.session_number),
                Some(TlvValue::UserMessageReference(v)) => umr = Some(u16::from(*v)),
                Some(TlvValue::MessagePayload(p)) => payload = Some(p.value.as_ref().to_vec()),
                _ => {}
            }
        }
        let unmatched = |status: CommandStatus| {
            self.inner.stats.update(|s| s.ussd.unmatched += 1);
            Err(status)
        };
        let continues = match op {
            Some(USSR_REQUEST) => true,
            Some(PSSR_RESPONSE) => false,
            _ => return unmatched(CommandStatus::EsmeRinvtlvval),
        };
        let data_coding = u8::from(submit.data_coding);
        let Some(encoding) = ussd_alphabet(data_coding) else {
            return unmatched(CommandStatus::EsmeRinvdcs);
        };
        let short = submit.short_message().as_ref();
        let message = match payload {
            Some(_) if !short.is_empty() => return unmatched(CommandStatus::EsmeRinvmsglen),
            Some(p) => p,
            None => short.to_vec(),
        };
        let units = part_units(encoding, self.inner.config.gsm7_packing, &message, 0);
        let limit = if encoding == Encoding::Gsm7 {
            SCREEN_SEPTETS_MAX
        } else {
            SCREEN_OCTETS_MAX
        };
        if units.len() > limit || (encoding == Encoding::Ucs2 && units.len() % 2 != 0) {
            return unmatched(CommandStatus::EsmeRinvmsglen);
        }
        let Ok(text) = decode_units(encoding, &units) else {
            return unmatched(CommandStatus::EsmeRinvmsglen);
        };
        let msisdn = digits(submit.destination_addr.as_str());
        let (waiting, next) = {
            let mut dialogs = lock(&self.inner.ussd);
            let Some(&no) = dialogs.by_msisdn.get(&msisdn) else {
                drop(dialogs);
                return unmatched(CommandStatus::EsmeRsubmitfail);
            };
            let Some(dialog) = dialogs.open.get_mut(&no) else {
                drop(dialogs);
                return unmatched(CommandStatus::EsmeRsubmitfail);
            };
            let key_ok = match dialog.leg.profile.session_key {
                UssdSessionKey::ItsSessionInfo => its == dialog.leg.its_session,
                UssdSessionKey::UserMessageReference => umr == dialog.leg.umr,
                UssdSessionKey::Msisdn => true,
            };
            let waiting = if key_ok { dialog.waiting.take() } else { None };
            let Some(waiting) = waiting else {
                drop(dialogs);
                return unmatched(CommandStatus::EsmeRsubmitfail);
            };
            let next = if continues {
                dialog.generation += 1;
                Some((no, dialog.generation))
            } else {
                dialogs.remove(no);
                None
            };
            (waiting, next)
        };
        self.inner.stats.update(|s| {
            s.ussd.screens += 1;
            if !continues {
                s.ussd.completed += 1;
            }
        });
        if let Some((no, generation)) = next {
            self.arm_idle_timer(no, generation);
        }
        let _ = waiting.send(Screen {
            text,
            continues,
            op: op.unwrap_or_default(),
            data_coding,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dials_split() {
        assert_eq!(
            split_dial("*7377*123456789#"),
            ("7377".into(), "*123456789#".into())
        );
        assert_eq!(split_dial("*7377#"), ("7377".into(), "#".into()));
        assert_eq!(split_dial("#100#"), ("100".into(), "#".into()));
        assert_eq!(split_dial("hello"), (String::new(), "hello".into()));
    }

    #[test]
    fn texts_encode_by_data_coding() {
        assert_eq!(encode_ussd_text("*4006#", 0x0F).unwrap(), b"*4006#");
        assert_eq!(
            encode_ussd_text("Да", 0x08).unwrap(),
            [0x04, 0x14, 0x04, 0x30]
        );
        assert!(encode_ussd_text("Да", 0x0F).is_err());
        assert!(encode_ussd_text("x", 0x04).is_err());
        assert_eq!(ussd_alphabet(0x0F), Some(Encoding::Gsm7));
        assert_eq!(ussd_alphabet(0x00), Some(Encoding::Gsm7));
        assert_eq!(ussd_alphabet(0x08), Some(Encoding::Ucs2));
    }
}
