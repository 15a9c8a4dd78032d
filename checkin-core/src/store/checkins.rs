//! Recording check-ins: one at a time or a batch in one transaction (group
//! commit), with the dedupe window that makes a redelivered SMS harmless.

use std::collections::HashMap;

use super::db::{self, Conn, Row};

use super::base::{flag_col, time_col, to_ms, Params, Store};
use super::db::Backend;
use super::error::{CheckinError, StoreError};
use super::handles::Checkins;
use super::orgs::{premises_from_row, PREMISES_SELECT};
use crate::model::{Channel, CheckIn, NewCheckIn, Premises, Recorded};
use crate::msisdn::Msisdn;
use crate::privacy::PhoneHash;
use crate::venue_code::VenueCode;
use crate::visits::{Seen, Visits};

/// Largest batch one transaction takes; callers split bigger ones. Bounds the
/// transaction's lock time and memory.
pub const CHECKIN_BATCH_MAX: usize = 1024;

/// A batch of check-ins as one unit: read the codes' premises and the
/// stored visits of the batch's phones in its window, place each
/// check-in by the dedupe rule (`visits.rs`), insert the new ones in one
/// statement.
fn record_in(
    store: &Store,
    tx: &mut Conn<'_>,
    batch: &[NewCheckIn],
    hashes: &[PhoneHash],
) -> Result<Vec<Result<Recorded, CheckinError>>, StoreError> {
    let backend = tx.backend();
    let window_ms = i64::try_from(store.config().dedupe_window.as_millis())
        .map_err(|_| StoreError::Config("dedupe window is too long".into()))?;
    if backend == Backend::Postgres {
        lock_phones(tx, hashes)?;
    }
    let mut premises = PremisesCache::new();
    premises.load(tx, backend, batch.iter().map(|c| c.code))?;
    let known = stored_visits(tx, backend, batch, hashes, window_ms)?;
    let mut ledger = Visits::new(
        window_ms,
        known
            .iter()
            .map(|(h, k)| (k.id, k.premises_id, *h, to_ms(k.at))),
    );
    enum Place {
        Refused(CheckinError),
        Known(usize),
        New(usize),
    }
    // Batch index of each new visit, in the ledger's order.
    let mut new_rows: Vec<usize> = Vec::new();
    let mut places = Vec::with_capacity(batch.len());
    let mut found = Vec::with_capacity(batch.len());
    for (i, (new, hash)) in batch.iter().zip(hashes).enumerate() {
        let p = match premises.get(tx, &new.code)? {
            None => {
                places.push(Place::Refused(CheckinError::UnknownCode));
                found.push(None);
                continue;
            }
            Some(p) if !p.active => {
                places.push(Place::Refused(CheckinError::InactivePremises));
                found.push(None);
                continue;
            }
            Some(p) => p,
        };
        places.push(match ledger.visit(p.id, &hash.0, to_ms(new.at)) {
            (Seen::Stored(k), _) => Place::Known(k),
            (Seen::New(n), false) => Place::New(new_rows[n]),
            (Seen::New(_), true) => {
                new_rows.push(i);
                Place::New(i)
            }
        });
        found.push(Some(p));
    }
    let mut new_ids = vec![0_i64; batch.len()];
    if !new_rows.is_empty() {
        let sql = checkins_insert_sql(backend, new_rows.len());
        let mut query = db::query(&sql);
        for &i in &new_rows {
            let (new, p) = (&batch[i], found[i].as_ref());
            query = query
                .bind(p.map_or(0, |p| p.id))
                .bind(&hashes[i].0[..])
                .bind(store.vault().seal(&new.phone))
                .bind(new.channel.as_str())
                .bind(new.consent)
                .bind(to_ms(new.at));
        }
        let fits = |i: usize, row: &Row| -> Result<bool, StoreError> {
            let hash: Vec<u8> = row.try_get("phone_hash")?;
            Ok(
                found[i].as_ref().map(|p| p.id) == Some(row.try_get::<i64, _>("premises_id")?)
                    && hashes[i].0[..] == hash[..]
                    && to_ms(batch[i].at) == row.try_get::<i64, _>("checked_in_at_ms")?,
            )
        };
        insert_checkins_with_ids(
            tx,
            query,
            backend,
            &new_rows,
            &mut new_ids,
            fits,
            "check-in",
        )?;
    }
    Ok(places
        .into_iter()
        .zip(found)
        .enumerate()
        .map(|(i, (place, premises))| {
            let premises = match (place, premises) {
                (Place::Refused(e), _) => return Err(e),
                (place, Some(p)) => (place, p),
                (_, None) => {
                    return Err(StoreError::Corrupt("a check-in lost its premises".into()).into())
                }
            };
            Ok(match premises {
                (Place::Known(k), premises) => Recorded {
                    checkin: known[k].1.clone(),
                    premises,
                    duplicate: true,
                },
                (Place::New(first), premises) => Recorded {
                    checkin: CheckIn {
                        id: new_ids[first],
                        premises_id: premises.id,
                        channel: batch[first].channel,
                        at: batch[first].at,
                        consent: batch[first].consent,
                    },
                    premises,
                    duplicate: first != i,
                },
                (Place::Refused(_), _) => unreachable!("answered above"),
            })
        })
        .collect())
}

/// `INSERT` of `rows` check-ins, six binds a row in this order: premises id,
/// phone hash, sealed phone, channel, consent, time (ms); on PostgreSQL with
/// `RETURNING` what [`insert_checkins_with_ids`] matches each id back by.
pub(crate) fn checkins_insert_sql(backend: Backend, rows: usize) -> String {
    let mut params = Params::new(backend);
    let mut sql = String::from(
        "INSERT INTO checkins \
         (premises_id, phone_hash, phone_sealed, channel, consent, checked_in_at_ms) VALUES ",
    );
    for r in 0..rows {
        sql.push_str(if r > 0 { ",(" } else { "(" });
        let row: Vec<String> = (0..6).map(|_| params.next()).collect();
        sql.push_str(&row.join(", "));
        sql.push(')');
    }
    if backend == Backend::Postgres {
        sql.push_str(" RETURNING id, premises_id, phone_hash, checked_in_at_ms");
    }
    sql
}

/// The stored check-ins of the batch's phones inside the batch's window.
fn stored_visits(
    tx: &mut Conn<'_>,
    backend: Backend,
    batch: &[NewCheckIn],
    hashes: &[PhoneHash],
    window_ms: i64,
) -> Result<Vec<([u8; 32], CheckIn)>, StoreError> {
    let times = batch.iter().map(|c| to_ms(c.at));
    let (Some(min_at), Some(max_at)) = (times.clone().min(), times.max()) else {
        return Ok(Vec::new());
    };
    let mut phones: Vec<&[u8; 32]> = hashes.iter().map(|h| &h.0).collect();
    phones.sort_unstable();
    phones.dedup();
    let mut params = Params::new(backend);
    let (from, to) = (params.next(), params.next());
    let mut sql = format!(
        "SELECT id, premises_id, phone_hash, channel, consent, checked_in_at_ms FROM checkins \
         WHERE checked_in_at_ms > {from} AND checked_in_at_ms < {to} AND phone_hash IN ("
    );
    let marks: Vec<String> = phones.iter().map(|_| params.next()).collect();
    sql.push_str(&marks.join(","));
    sql.push(')');
    let mut query = db::query(&sql)
        .bind(min_at.saturating_sub(window_ms))
        .bind(max_at.saturating_add(window_ms));
    for phone in phones {
        query = query.bind(&phone[..]);
    }
    query
        .fetch_all(tx)?
        .iter()
        .map(|row| {
            let hash: Vec<u8> = row.try_get("phone_hash")?;
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt("phone hash length".into()))?;
            Ok((hash, checkin_from_row(row)?))
        })
        .collect()
}

/// SQLite: the ids of the rows the multi-row `INSERT` without `RETURNING`
/// just run on `conn` added, in its `VALUES` order (no row values to copy
/// out, and no search to match them back). Why the ids are the `rows` ending at `last_insert_rowid()`:
/// the one writer inserts in a transaction, and SQLite gives each new row of
/// an `INTEGER PRIMARY KEY` table the largest id plus one, in order; it picks
/// ids at random only once the largest is `i64::MAX`, which a sequence from 1
/// never reaches. A row count that disagrees fails the group.
pub(crate) fn sqlite_inserted_ids(
    conn: &mut Conn<'_>,
    rows: usize,
) -> Result<Vec<i64>, StoreError> {
    let row =
        db::query("SELECT last_insert_rowid() AS last, changes() AS n").fetch_one(&mut *conn)?;
    let (last, n): (i64, i64) = (row.try_get("last")?, row.try_get("n")?);
    if i64::try_from(rows).ok() != Some(n) || last < n {
        return Err(StoreError::Corrupt(format!(
            "a multi-row insert of {rows} rows reports {n} inserted, the last id {last}"
        )));
    }
    Ok((last - n + 1..=last).collect())
}

/// Runs a multi-row check-in `insert` of the visits `new_rows` (in its
/// VALUES' order; on PostgreSQL with `RETURNING id` and the columns `fits`
/// reads) and writes each new row's id at `new_ids[v]`. PostgreSQL returns
/// the rows in no promised order, but usually in the VALUES' order: each
/// row's own position is tried before a search (a search for every row was
/// quadratic in the group). `what` names the group's entries in the error
/// when a row fits none.
pub(crate) fn insert_checkins_with_ids(
    conn: &mut Conn<'_>,
    insert: db::Query<'_>,
    backend: Backend,
    new_rows: &[usize],
    new_ids: &mut [i64],
    fits: impl Fn(usize, &Row) -> Result<bool, StoreError>,
    what: &str,
) -> Result<(), StoreError> {
    if backend == Backend::Sqlite {
        // No RETURNING on SQLite: see `sqlite_inserted_ids`.
        insert.execute(&mut *conn)?;
        let ids = sqlite_inserted_ids(conn, new_rows.len())?;
        for (&v, id) in new_rows.iter().zip(ids) {
            new_ids[v] = id;
        }
        return Ok(());
    }
    for (r, row) in insert.fetch_all(&mut *conn)?.iter().enumerate() {
        let open = |v: usize, ids: &[i64]| -> Result<bool, StoreError> {
            Ok(ids[v] == 0 && fits(v, row)?)
        };
        let v = match new_rows.get(r) {
            Some(&v) if open(v, new_ids)? => v,
            _ => {
                let mut found = None;
                for &v in new_rows {
                    if open(v, new_ids)? {
                        found = Some(v);
                        break;
                    }
                }
                found.ok_or_else(|| {
                    StoreError::Corrupt(format!("an inserted check-in matches no {what}"))
                })?
            }
        };
        new_ids[v] = row.try_get("id")?;
    }
    Ok(())
}

/// Serializes concurrent check-ins of the same phones on PostgreSQL, so two
/// deliveries of one SMS cannot both pass the dedupe check. Sorted keys: no deadlock.
pub(crate) fn lock_phones(conn: &mut Conn<'_>, hashes: &[PhoneHash]) -> Result<(), StoreError> {
    let mut keys: Vec<i64> = hashes
        .iter()
        .map(|h| {
            let mut first = [0u8; 8];
            first.copy_from_slice(&h.0[..8]);
            i64::from_le_bytes(first)
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    // One round trip for the whole batch; a VALUES list is scanned in order,
    // so the locks are taken in sorted order. The keys are integers we
    // computed, never text from outside, so writing them in is safe.
    let values: Vec<String> = keys.iter().map(|k| format!("({k}::bigint)")).collect();
    let sql = format!(
        "SELECT pg_advisory_xact_lock(k) FROM (VALUES {}) AS t(k)",
        values.join(",")
    );
    db::query(&sql).execute(&mut *conn)?;
    Ok(())
}

/// Premises looked up once per transaction, by code.
#[derive(Debug, Default)]
pub(crate) struct PremisesCache(HashMap<VenueCode, Option<Premises>>);

impl PremisesCache {
    pub(crate) fn new() -> PremisesCache {
        PremisesCache::default()
    }

    /// What was looked up: `None` for a code no premises has.
    pub(crate) fn into_map(self) -> HashMap<VenueCode, Option<Premises>> {
        self.0
    }

    /// Looks up every code not yet cached in one statement (a group of SMS
    /// names up to hundreds of premises: one statement instead of one each,
    /// and each statement is a hand-off to the connection's worker thread).
    pub(crate) fn load(
        &mut self,
        conn: &mut Conn<'_>,
        backend: Backend,
        codes: impl IntoIterator<Item = VenueCode>,
    ) -> Result<(), StoreError> {
        let mut wanted: Vec<VenueCode> = codes
            .into_iter()
            .filter(|c| !self.0.contains_key(c))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        let mut params = Params::new(backend);
        let mut sql = format!("{PREMISES_SELECT} WHERE code IN (");
        for k in 0..wanted.len() {
            if k > 0 {
                sql.push(',');
            }
            sql.push_str(&params.next());
        }
        sql.push(')');
        let mut query = db::query(&sql);
        for code in &wanted {
            query = query.bind(code.digits());
        }
        for code in &wanted {
            self.0.insert(*code, None);
        }
        for row in query.fetch_all(&mut *conn)? {
            let p = premises_from_row(&row)?;
            self.0.insert(p.code, Some(p));
        }
        Ok(())
    }

    pub(crate) fn get(
        &mut self,
        conn: &mut Conn<'_>,
        code: &VenueCode,
    ) -> Result<Option<Premises>, StoreError> {
        if let Some(p) = self.0.get(code) {
            return Ok(p.clone());
        }
        let row = db::query(&format!("{PREMISES_SELECT} WHERE code = $1"))
            .bind(code.digits())
            .fetch_optional(&mut *conn)?;
        let p = row.as_ref().map(premises_from_row).transpose()?;
        self.0.insert(*code, p.clone());
        Ok(p)
    }
}

pub(crate) fn checkin_from_row(row: &Row) -> Result<CheckIn, StoreError> {
    let channel: String = row.try_get("channel")?;
    Ok(CheckIn {
        id: row.try_get("id")?,
        premises_id: row.try_get("premises_id")?,
        channel: Channel::parse(&channel)
            .ok_or_else(|| StoreError::Corrupt(format!("channel {channel:?}")))?,
        consent: flag_col(row, "consent")?,
        at: time_col(row, "checked_in_at_ms")?,
    })
}

impl Checkins<'_> {
    /// Records one check-in, or returns the existing one of the same phone at the
    /// same premises within the dedupe window.
    pub async fn record_checkin(self, new: &NewCheckIn) -> Result<Recorded, CheckinError> {
        let mut results = self.record_checkins(std::slice::from_ref(new)).await?;
        results
            .pop()
            .unwrap_or_else(|| Err(StoreError::Corrupt("empty batch result".into()).into()))
    }

    /// Records a batch in one transaction: one commit for all (group commit). Each
    /// item gets its own outcome; visitor errors (unknown code, closed premises) do
    /// not abort the others. A storage error fails the whole batch and commits nothing.
    pub async fn record_checkins(
        self,
        batch: &[NewCheckIn],
    ) -> Result<Vec<Result<Recorded, CheckinError>>, StoreError> {
        if batch.len() > CHECKIN_BATCH_MAX {
            return Err(StoreError::Invalid(format!(
                "a batch holds at most {CHECKIN_BATCH_MAX} check-ins"
            )));
        }
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let hashes: Vec<PhoneHash> = batch
            .iter()
            .map(|c| self.store.vault().hash(&c.phone))
            .collect();
        let store = self.store.clone();
        let batch = batch.to_vec();
        self.store
            .write(move |tx| record_in(&store, tx, &batch, &hashes))
            .await
    }

    /// The check-ins of `phone`, oldest first.
    pub async fn checkins_of(self, phone: &Msisdn) -> Result<Vec<CheckIn>, StoreError> {
        let hash = self.store.vault().hash(phone);
        self.store
            .read(move |c| {
                let rows = db::query(
                    "SELECT id, premises_id, channel, consent, checked_in_at_ms FROM checkins \
                     WHERE phone_hash = $1 ORDER BY checked_in_at_ms, id",
                )
                .bind(&hash.0[..])
                .fetch_all(c)?;
                rows.iter().map(checkin_from_row).collect()
            })
            .await
    }

    /// How many check-ins the premises has (no personal data involved).
    pub async fn count_checkins(self, premises_id: i64) -> Result<u64, StoreError> {
        let n: i64 = self
            .store
            .read(move |c| {
                Ok(
                    db::query("SELECT COUNT(*) AS n FROM checkins WHERE premises_id = $1")
                        .bind(premises_id)
                        .fetch_scalar(c)?,
                )
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
