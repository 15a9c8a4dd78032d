//! Several operators in one process: a [`Network`] owns one [`Simulator`]
//! per operator (each its own SMPP port, accounts, store, stats, faults and
//! receipts), routes a phone's MO to the operator its number belongs to, and
//! serves one control API and virtual phone for all of them.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use smpp_text::range::NumberRange;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    lock, store::digits, Account, Config, Error, FaultProfile, MoReport, MoRequest, MtMessage,
    Simulator, StatsSnapshot,
};

/// Name of the one operator of a configuration without `[[operator]]`.
pub const DEFAULT_OPERATOR: &str = "default";

/// Longest operator name.
pub const OPERATOR_NAME_LEN_MAX: usize = 32;

/// Operators one process plays at most (each holds a listener and a store).
pub const OPERATORS_MAX: usize = 64;

/// Ranges one operator lists at most.
pub const RANGES_MAX: usize = 1024;

#[derive(Debug)]
struct Operator {
    name: String,
    sim: Simulator,
    ranges: Vec<NumberRange>,
    listen: SocketAddr,
    /// The SMPP listener's address once bound.
    smpp: Mutex<Option<SocketAddr>>,
}

/// Several operators' SMSCs: cheap to clone, every clone shares them.
#[derive(Debug, Clone)]
pub struct Network {
    operators: Arc<Vec<Operator>>,
}

/// One operator as `GET /api/operators` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OperatorInfo {
    /// Name.
    pub name: String,
    /// Address of its SMPP server (absent until it listens).
    pub smpp: Option<SocketAddr>,
    /// Numbers it serves.
    pub ranges: Vec<String>,
    /// ESMEs bound now.
    pub esmes: Vec<BoundEsme>,
}

/// A bound SMPP session.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BoundEsme {
    /// Its `system_id`.
    pub system_id: String,
    /// `transmitter`, `receiver` or `transceiver`.
    pub bind: &'static str,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= OPERATOR_NAME_LEN_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The error of operator `name`'s configuration, naming it.
fn operator_error(name: &str, error: Error) -> Error {
    match error {
        Error::Config(message) => Error::Config(format!("operator {name:?}: {message}")),
        other => other,
    }
}

impl Network {
    /// Builds one simulator per `[[operator]]` of `config` (or one named
    /// [`DEFAULT_OPERATOR`], listening on `default_listen`, without any).
    pub fn new(config: Config, default_listen: SocketAddr) -> Result<Self, Error> {
        let mut base = config;
        let specs = std::mem::take(&mut base.operators);
        if specs.is_empty() {
            return Ok(Self {
                operators: Arc::new(vec![Operator {
                    name: DEFAULT_OPERATOR.into(),
                    sim: Simulator::new(base)?,
                    ranges: Vec::new(),
                    listen: default_listen,
                    smpp: Mutex::new(None),
                }]),
            });
        }
        if specs.len() > OPERATORS_MAX {
            return Err(Error::Config(format!(
                "at most {OPERATORS_MAX} [[operator]] sections"
            )));
        }
        let mut operators = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            let name = spec.name;
            if !valid_name(&name) {
                return Err(Error::Config(format!(
                    "operator[{i}].name {name:?} must be 1..={OPERATOR_NAME_LEN_MAX} ASCII letters, digits, '-' or '_'"
                )));
            }
            if operators.iter().any(|o: &Operator| o.name == name) {
                return Err(Error::Config(format!(
                    "operator[{i}].name {name:?} is used twice"
                )));
            }
            if spec.ranges.len() > RANGES_MAX {
                return Err(Error::Config(format!(
                    "operator {name:?}: at most {RANGES_MAX} ranges"
                )));
            }
            let ranges = spec
                .ranges
                .iter()
                .map(|r| r.parse::<NumberRange>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Config(format!("operator {name:?}: ranges: {e}")))?;
            let mut config = base.clone();
            if !spec.accounts.is_empty() {
                config.accounts = spec
                    .accounts
                    .iter()
                    .map(|a| a.parse::<Account>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| operator_error(&name, e))
                    .map_err(|e| match e {
                        Error::Config(m) => Error::Config(m.replacen(": ", ": accounts: ", 1)),
                        other => other,
                    })?;
            }
            if let Some(faults) = spec.faults {
                config.faults = faults;
            }
            if let Some(receipts) = spec.receipts {
                config.receipts = receipts;
            }
            if spec.foreign == crate::Foreign::Refuse {
                config.serves_only = ranges.clone();
            }
            if let Some(path) = &base.journal_path {
                // One writer per file: each operator journals to its own.
                let mut path = path.clone().into_os_string();
                path.push(format!(".{name}"));
                config.journal_path = Some(PathBuf::from(path));
            }
            let sim = Simulator::new(config).map_err(|e| operator_error(&name, e))?;
            operators.push(Operator {
                name,
                sim,
                ranges,
                listen: spec.smpp.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
                smpp: Mutex::new(None),
            });
        }
        Ok(Self {
            operators: Arc::new(operators),
        })
    }

    /// Operator names, in configuration order (the first is the default).
    pub fn names(&self) -> Vec<String> {
        self.operators.iter().map(|o| o.name.clone()).collect()
    }

    /// Operator `name`'s simulator.
    pub fn simulator(&self, name: &str) -> Option<&Simulator> {
        self.operators
            .iter()
            .find(|o| o.name == name)
            .map(|o| &o.sim)
    }

    /// Every operator's name and simulator, in configuration order.
    pub fn simulators(&self) -> impl Iterator<Item = (&str, &Simulator)> {
        self.operators.iter().map(|o| (o.name.as_str(), &o.sim))
    }

    /// Operator `name`'s ranges (empty for an operator that takes only
    /// the numbers no other one serves).
    pub fn ranges(&self, name: &str) -> Vec<NumberRange> {
        self.operators
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.ranges.clone())
            .unwrap_or_default()
    }

    /// The operator `number` belongs to: the longest matching range, the
    /// first operator when none matches.
    pub fn route(&self, number: &str) -> (&str, &Simulator) {
        let digits = digits(number);
        let mut best: Option<(usize, &Operator)> = None;
        for operator in self.operators.iter() {
            let score = operator
                .ranges
                .iter()
                .filter_map(|r| r.specificity(&digits))
                .max();
            if let Some(score) = score {
                if best.is_none_or(|(b, _)| score > b) {
                    best = Some((score, operator));
                }
            }
        }
        // new() guarantees one operator at least.
        let operator = best.map_or(&self.operators[0], |(_, o)| o);
        (&operator.name, &operator.sim)
    }

    fn named(&self, name: &str) -> Result<&Operator, Error> {
        self.operators
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| Error::UnknownOperator(name.into()))
    }

    /// Injects an MO through the operator its sender belongs to; returns
    /// that operator's name and the report.
    pub async fn inject_mo(&self, request: MoRequest) -> Result<(String, MoReport), Error> {
        let (name, sim) = self.route(&request.from);
        let name = name.to_string();
        let report = sim.inject_mo(request).await?;
        Ok((name, report))
    }

    /// MT messages of one operator or all (merged oldest first), each with
    /// its operator's name; at most the `limit` newest.
    pub fn messages(
        &self,
        operator: Option<&str>,
        to: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, MtMessage)>, Error> {
        let mut all = Vec::new();
        for o in self.operators.iter() {
            if operator.is_some_and(|name| name != o.name) {
                continue;
            }
            all.extend(
                o.sim
                    .messages(to, limit)
                    .into_iter()
                    .map(|m| (o.name.clone(), m)),
            );
        }
        if let Some(name) = operator {
            self.named(name)?;
        }
        all.sort_by_key(|(_, m)| m.submitted_at);
        let skip = all.len().saturating_sub(limit);
        Ok(all.split_off(skip))
    }

    /// Every operator's counters, in configuration order.
    pub fn stats(&self) -> Vec<(String, StatsSnapshot)> {
        self.operators
            .iter()
            .map(|o| (o.name.clone(), o.sim.stats()))
            .collect()
    }

    /// Replaces the fault profile of operator `name`, or of every operator.
    pub fn set_faults(&self, operator: Option<&str>, profile: FaultProfile) -> Result<(), Error> {
        profile.validate()?;
        match operator {
            Some(name) => self.named(name)?.sim.set_faults(profile),
            None => self
                .operators
                .iter()
                .try_for_each(|o| o.sim.set_faults(profile.clone())),
        }
    }

    /// The fault profile of operator `name`, or of the first.
    pub fn faults(&self, operator: Option<&str>) -> Result<FaultProfile, Error> {
        match operator {
            Some(name) => Ok(self.named(name)?.sim.faults()),
            None => Ok(self.operators[0].sim.faults()),
        }
    }

    /// Every operator: name, SMPP address, ranges, bound ESMEs.
    pub fn operators(&self) -> Vec<OperatorInfo> {
        self.operators
            .iter()
            .map(|o| OperatorInfo {
                name: o.name.clone(),
                smpp: *lock(&o.smpp),
                ranges: o.ranges.iter().map(ToString::to_string).collect(),
                esmes: o
                    .sim
                    .bound_esmes()
                    .into_iter()
                    .map(|(system_id, bind)| BoundEsme { system_id, bind })
                    .collect(),
            })
            .collect()
    }

    /// Operator `name`'s SMPP address once [`Self::bind_smpp`] has run.
    pub fn smpp_addr(&self, name: &str) -> Option<SocketAddr> {
        self.operators
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| *lock(&o.smpp))
    }

    /// Binds every operator's SMPP listener (its `smpp` address), in
    /// configuration order, and remembers the addresses.
    pub async fn bind_smpp(&self) -> Result<Vec<TcpListener>, Error> {
        let mut listeners = Vec::with_capacity(self.operators.len());
        for o in self.operators.iter() {
            let listener = TcpListener::bind(o.listen).await.map_err(|e| {
                Error::Io(std::io::Error::new(
                    e.kind(),
                    format!("operator {:?}: binding {}: {e}", o.name, o.listen),
                ))
            })?;
            *lock(&o.smpp) = Some(listener.local_addr()?);
            listeners.push(listener);
        }
        Ok(listeners)
    }

    /// Serves each operator's SMPP on its listener from [`Self::bind_smpp`]
    /// until `shutdown`; returns the first error.
    pub async fn serve_smpp(
        self,
        listeners: Vec<TcpListener>,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        let servers = self
            .operators
            .iter()
            .zip(listeners)
            .map(|(o, l)| o.sim.clone().serve_smpp(l, shutdown.clone()));
        futures::future::join_all(servers)
            .await
            .into_iter()
            .collect()
    }

    /// Waits until every operator has a session that can receive, or `shutdown`.
    pub async fn wait_for_receivers(&self, shutdown: &CancellationToken) -> bool {
        for o in self.operators.iter() {
            if !o.sim.wait_for_receivers(1, shutdown).await {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OperatorConfig;

    fn operator(name: &str, ranges: &[&str]) -> OperatorConfig {
        OperatorConfig {
            name: name.into(),
            smpp: None,
            accounts: Vec::new(),
            ranges: ranges.iter().map(ToString::to_string).collect(),
            faults: None,
            receipts: None,
            foreign: crate::Foreign::default(),
        }
    }

    fn network(operators: Vec<OperatorConfig>) -> Result<Network, Error> {
        let config = Config {
            operators,
            ..Config::default()
        };
        Network::new(config, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    #[test]
    fn routes_by_longest_match_else_first() {
        let net = network(vec![
            operator("a", &["+7"]),
            operator("b", &["+7916", "+7903"]),
            operator("c", &["+79161000000-+79161999999"]),
        ])
        .unwrap();
        assert_eq!(net.route("+7 916 223-45-67").0, "b");
        assert_eq!(net.route("79031234567").0, "b");
        assert_eq!(net.route("+79161234567").0, "c");
        assert_eq!(net.route("+79261234567").0, "a");
        assert_eq!(net.route("+3531234567").0, "a");
    }

    #[test]
    fn range_numbers_stay_in_range() {
        let span: NumberRange = "+79161000000-+79161000009".parse().unwrap();
        assert_eq!(span.number(0), "+79161000000");
        assert_eq!(span.number(13), "+79161000003");
        let prefix: NumberRange = "+7916".parse().unwrap();
        assert_eq!(prefix.number(42), "+79160000042");
        assert_eq!(prefix.to_string(), "+7916");
        assert_eq!(span.to_string(), "+79161000000-+79161000009");
    }

    /// The README's example is a valid configuration.
    #[test]
    fn readme_example_parses() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("## Several operators")
            .nth(1)
            .expect("section");
        let example = section
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("toml block");
        let config: Config = toml::from_str(example).expect("parses");
        let net = Network::new(config, SocketAddr::from(([127, 0, 0, 1], 0))).expect("valid");
        assert_eq!(net.names(), ["mts", "beeline"]);
        assert_eq!(net.route("+79051234567").0, "beeline");
        let beeline = net.simulator("beeline").expect("beeline");
        assert_eq!(beeline.faults().disconnect_share, 0.01);
        assert_eq!(beeline.config().receipts.delay_ms, 1000);
        assert_eq!(
            net.simulator("mts").expect("mts").config().accounts[0].system_id,
            "checkin"
        );
    }

    #[test]
    fn bad_configs_name_the_operator_and_key() {
        let e = network(vec![operator("a", &["+79x"])]).unwrap_err();
        assert!(e.to_string().contains("operator \"a\": ranges"), "{e}");
        let e = network(vec![operator("a b", &[])]).unwrap_err();
        assert!(e.to_string().contains("operator[0].name"), "{e}");
        let e = network(vec![operator("a", &[]), operator("a", &[])]).unwrap_err();
        assert!(e.to_string().contains("used twice"), "{e}");
        let mut bad = operator("b", &[]);
        bad.accounts = vec!["nopassword".into()];
        let e = network(vec![operator("a", &[]), bad]).unwrap_err();
        assert!(e.to_string().contains("operator \"b\": accounts"), "{e}");
        let e = network(vec![operator("a", &["+7903-+79"])]).unwrap_err();
        assert!(e.to_string().contains("operator \"a\": ranges"), "{e}");
    }
}
