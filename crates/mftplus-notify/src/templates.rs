//! The words of a notification: subject and plain-text body per event kind, tier and locale.
//! Operators read English and get the raw details; customers read Hungarian (or English with
//! locale `en`) and never see internal details beyond what the text names.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happened, as the cloud's event log records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyEvent {
    /// `host_stale`, `host_down`, `host_recovered`, `expected_backup_missed`,
    /// `op_pending_signature`, `op_failed`, `op_rejected`; anything else gets a generic text.
    pub kind: String,
    pub customer_id: String,
    pub customer_name: String,
    #[serde(default)]
    pub host_id: Option<String>,
    #[serde(default)]
    pub guest_id: Option<String>,
    /// RFC 3339.
    pub at: String,
    /// Kind-specific facts; the texts use `last_seen`, `target`, `expected_by`, `op_id`,
    /// `op_kind` and `error` when present.
    #[serde(default)]
    pub details: Value,
}

/// The event kinds that have texts of their own; the cloud notifies for exactly these.
pub const NOTIFIABLE_KINDS: [&str; 7] = [
    "host_stale",
    "host_down",
    "host_recovered",
    "expected_backup_missed",
    "op_pending_signature",
    "op_failed",
    "op_rejected",
];

/// Who reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// The fleet's operators (and every webhook): English, with the raw details.
    Operator,
    /// The customer's own contact: Hungarian unless the locale is `en`.
    Customer,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Hu,
}

/// Facts the texts are built from, each already formatted for the language.
struct Facts<'a> {
    customer: &'a str,
    subject: String,
    at: String,
    details: &'a Value,
    lang: Lang,
}

impl Facts<'_> {
    /// A detail as text; times read like the event's own time.
    fn detail(&self, key: &str) -> Option<String> {
        let s = match self.details.get(key)? {
            Value::String(s) => s.clone(),
            Value::Null => return None,
            other => other.to_string(),
        };
        Some(if key == "last_seen" || key == "expected_by" {
            format_time(&s, self.lang)
        } else {
            s
        })
    }
}

/// `(subject, body)` for `event`. Operators always get English; customers get English when
/// `locale` is `en` (or `en-…`), Hungarian otherwise — the fleet's customers are Hungarian.
pub fn render(event: &NotifyEvent, tier: Tier, locale: &str) -> (String, String) {
    let lang = match tier {
        Tier::Operator => Lang::En,
        Tier::Customer if is_english(locale) => Lang::En,
        Tier::Customer => Lang::Hu,
    };
    let facts = facts(event, lang);
    let (subject, text) = match lang {
        Lang::En => english(&event.kind, &facts),
        Lang::Hu => hungarian(&event.kind, &facts),
    };
    let body = match (tier, lang) {
        (Tier::Operator, _) => {
            let details = serde_json::to_string_pretty(&event.details).unwrap_or_default();
            format!(
                "{text}\n\nCustomer: {} ({})\nHost: {}\nGuest: {}\nEvent: {} at {}\nDetails: {details}\n",
                event.customer_name,
                event.customer_id,
                event.host_id.as_deref().unwrap_or("-"),
                event.guest_id.as_deref().unwrap_or("-"),
                event.kind,
                event.at,
            )
        }
        (Tier::Customer, Lang::En) => format!(
            "Dear {},\n\n{text}\n\nThis is an automatic message; please do not reply to it.\n\n\
             Kind regards,\nMFTPlus fleet monitoring\n",
            facts.customer
        ),
        (Tier::Customer, Lang::Hu) => format!(
            "Tisztelt {}!\n\n{text}\n\nEz egy automatikus üzenet, kérjük, ne válaszoljon rá.\n\n\
             Üdvözlettel:\nMFTPlus flottafelügyelet\n",
            facts.customer
        ),
    };
    let subject = match tier {
        Tier::Operator => format!("[{}] {subject}", event.customer_name),
        Tier::Customer => format!("[MFTPlus] {subject}"),
    };
    (subject, body)
}

fn is_english(locale: &str) -> bool {
    let l = locale.trim().to_ascii_lowercase();
    l == "en" || l.starts_with("en-") || l.starts_with("en_")
}

fn facts<'a>(event: &'a NotifyEvent, lang: Lang) -> Facts<'a> {
    let subject = match (&event.host_id, &event.guest_id) {
        (Some(h), Some(g)) => format!("{h}/{g}"),
        (Some(h), None) => h.clone(),
        (None, Some(g)) => g.clone(),
        (None, None) => event.customer_name.clone(),
    };
    Facts {
        customer: &event.customer_name,
        subject,
        at: format_time(&event.at, lang),
        details: &event.details,
        lang,
    }
}

/// `2024-05-01 12:00 UTC` in English, `2024. 05. 01. 12:00 (UTC)` in Hungarian; a value that
/// is not RFC 3339 is shown as it came.
fn format_time(raw: &str, lang: Lang) -> String {
    match chrono::DateTime::parse_from_rfc3339(raw) {
        Ok(t) => {
            let t = t.with_timezone(&chrono::Utc);
            match lang {
                Lang::En => t.format("%Y-%m-%d %H:%M UTC").to_string(),
                Lang::Hu => t.format("%Y. %m. %d. %H:%M (UTC)").to_string(),
            }
        }
        Err(_) => raw.to_string(),
    }
}

fn english(kind: &str, f: &Facts<'_>) -> (String, String) {
    let (s, at) = (&f.subject, &f.at);
    let d = |k| f.detail(k);
    match kind {
        "host_stale" => (
            format!("Host stale: {s}"),
            format!(
                "{s} has not reported since {}. It is not considered down yet.",
                d("last_seen").unwrap_or_else(|| at.clone())
            ),
        ),
        "host_down" => (
            format!("Host down: {s}"),
            format!("{s} has not reported and is considered down since {at}."),
        ),
        "host_recovered" => (
            format!("Host recovered: {s}"),
            format!("{s} is reporting again since {at}. No action is needed."),
        ),
        "expected_backup_missed" => (
            format!("Expected backup missed: {s}"),
            format!(
                "No backup of {s}{} arrived by {}.",
                d("target").map(|t| format!(" to {t}")).unwrap_or_default(),
                d("expected_by").unwrap_or_else(|| at.clone())
            ),
        ),
        "op_pending_signature" => (
            format!("Operation awaiting signature: {s}"),
            format!(
                "An operation{} on {s} is waiting for an operator's signature and has not run.",
                d("op_kind").map(|k| format!(" ({k})")).unwrap_or_default()
            ),
        ),
        "op_failed" => (
            format!("Operation failed: {s}"),
            format!(
                "An operation{} on {s} failed at {at}.{}",
                d("op_kind").map(|k| format!(" ({k})")).unwrap_or_default(),
                d("error")
                    .map(|e| format!(" Error: {e}"))
                    .unwrap_or_default()
            ),
        ),
        "op_rejected" => (
            format!("Operation rejected: {s}"),
            format!(
                "{s} refused an operation{} at {at} because its signature did not verify.{}",
                d("op_kind").map(|k| format!(" ({k})")).unwrap_or_default(),
                d("error")
                    .map(|e| format!(" Reason: {e}"))
                    .unwrap_or_default()
            ),
        ),
        other => (
            format!("Fleet event {other}: {s}"),
            format!("Event {other} happened on {s} at {at}."),
        ),
    }
}

fn hungarian(kind: &str, f: &Facts<'_>) -> (String, String) {
    let (s, at) = (&f.subject, &f.at);
    let d = |k| f.detail(k);
    match kind {
        "host_stale" => (
            format!("Késik a szerver jelentése: {s}"),
            format!(
                "A(z) {s} szerver {} óta nem küldött állapotjelentést. Egyelőre nem tekintjük \
                 leálltnak, munkatársaink figyelik.",
                d("last_seen").unwrap_or_else(|| at.clone())
            ),
        ),
        "host_down" => (
            format!("Nem elérhető a szerver: {s}"),
            format!(
                "A(z) {s} szerver {at} óta nem elérhető. Munkatársaink értesítést kaptak, és \
                 vizsgálják a hiba okát. Ha a leállás tervezett volt, ezt az üzenetet figyelmen \
                 kívül hagyhatja."
            ),
        ),
        "host_recovered" => (
            format!("Újra elérhető a szerver: {s}"),
            format!(
                "A(z) {s} szerver {at} óta ismét elérhető, és rendben működik. Önnek nincs \
                 további teendője."
            ),
        ),
        "expected_backup_missed" => (
            format!("Elmaradt a várt mentés: {s}"),
            format!(
                "A(z) {s} szerverről {} időpontig nem készült el a várt mentés{}. Munkatársaink \
                 vizsgálják az okát, és szükség esetén felveszik Önnel a kapcsolatot.",
                d("expected_by").unwrap_or_else(|| at.clone()),
                d("target")
                    .map(|t| format!(" (célhely: {t})"))
                    .unwrap_or_default()
            ),
        ),
        "op_pending_signature" => (
            format!("Aláírásra váró művelet: {s}"),
            format!(
                "Egy művelet{} a(z) {s} szerveren üzemeltetői aláírásra vár, ezért még nem \
                 futott le.",
                d("op_kind").map(|k| format!(" ({k})")).unwrap_or_default()
            ),
        ),
        "op_failed" => {
            (
                format!("Sikertelen művelet: {s}"),
                format!(
                "Egy művelet{} a(z) {s} szerveren {at} időpontban nem sikerült.{} Munkatársaink \
                 vizsgálják a hibát.",
                d("op_kind").map(|k| format!(" ({k})")).unwrap_or_default(),
                d("error").map(|e| format!(" Hiba: {e}.")).unwrap_or_default()
            ),
            )
        }
        "op_rejected" => (
            format!("Elutasított művelet: {s}"),
            format!(
                "A(z) {s} szerver {at} időpontban elutasított egy műveletet{}, mert annak \
                 aláírása nem volt érvényes. A szerveren semmi sem változott.",
                d("op_kind").map(|k| format!(" ({k})")).unwrap_or_default()
            ),
        ),
        other => (
            format!("Értesítés a flottáról: {s}"),
            format!("A(z) {s} esetében esemény történt ({other}) ekkor: {at}."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KINDS: [&str; 7] = crate::NOTIFIABLE_KINDS;

    fn event(kind: &str) -> NotifyEvent {
        NotifyEvent {
            kind: kind.into(),
            customer_id: "cus_1".into(),
            customer_name: "Kovács Kft.".into(),
            host_id: Some("host-7".into()),
            guest_id: None,
            at: "2024-05-01T12:30:00Z".into(),
            details: json!({
                "last_seen": "2024-05-01T11:00:00+02:00",
                "target": "nas-1",
                "expected_by": "2024-05-01T06:00:00Z",
                "op_kind": "restore",
                "error": "disk full",
                "internal_note": "secret-ish"
            }),
        }
    }

    /// Words that only the English texts use; none may leak into a Hungarian text.
    const ENGLISH_WORDS: [&str; 8] = [
        "Host",
        "down",
        "recovered",
        "Operation",
        "failed",
        "backup",
        "Dear",
        "since",
    ];

    #[test]
    fn hungarian_host_down_is_hungarian() {
        let (subject, body) = render(&event("host_down"), Tier::Customer, "hu");
        assert!(subject.contains("Nem elérhető a szerver"), "{subject}");
        assert!(subject.contains("host-7"));
        assert!(!subject.contains("Host down"));
        assert!(body.starts_with("Tisztelt Kovács Kft.!"));
        assert!(body.contains("2024. 05. 01. 12:30 (UTC)"), "{body}");
    }

    #[test]
    fn every_kind_and_tier_renders() {
        for kind in KINDS {
            let ev = event(kind);
            let (op_s, op_b) = render(&ev, Tier::Operator, "hu");
            let (hu_s, hu_b) = render(&ev, Tier::Customer, "hu");
            let (en_s, en_b) = render(&ev, Tier::Customer, "en");

            // Operators get English with the raw details whatever the customer's locale.
            assert!(op_s.starts_with("[Kovács Kft.] "), "{kind}: {op_s}");
            assert!(op_s.contains("host-7"), "{kind}: {op_s}");
            assert!(
                op_b.contains("internal_note"),
                "{kind}: operator body lacks details"
            );
            assert!(op_b.contains(&format!("Event: {kind}")), "{kind}");

            // Customers never see raw details.
            for b in [&hu_b, &en_b] {
                assert!(
                    !b.contains("internal_note"),
                    "{kind}: details leaked to customer"
                );
            }
            assert!(en_b.starts_with("Dear Kovács Kft.,"), "{kind}");
            assert!(hu_b.starts_with("Tisztelt Kovács Kft.!"), "{kind}");
            assert!(hu_s.starts_with("[MFTPlus] ") && en_s.starts_with("[MFTPlus] "));

            // Hungarian is Hungarian: accented letters, none of the English words.
            assert!(
                hu_s.chars().any(|c| "áéíóöőúüű".contains(c)),
                "{kind}: {hu_s}"
            );
            for w in ENGLISH_WORDS {
                assert!(!hu_s.contains(w), "{kind}: {w:?} in {hu_s}");
                assert!(!hu_b.contains(w), "{kind}: {w:?} in {hu_b}");
            }
            assert_ne!(hu_s, en_s);
            // The English customer subject is the operator's without the customer tag.
            assert_eq!(
                en_s.trim_start_matches("[MFTPlus] "),
                op_s.trim_start_matches("[Kovács Kft.] ")
            );
            for text in [&op_s, &op_b, &hu_s, &hu_b, &en_s, &en_b] {
                assert!(
                    !text.contains('{') || text == &op_b,
                    "{kind}: placeholder in {text}"
                );
            }
        }
    }

    #[test]
    fn kind_specific_facts_appear() {
        let (_, b) = render(&event("op_failed"), Tier::Customer, "hu");
        assert!(b.contains("Hiba: disk full."), "{b}");
        let (_, b) = render(&event("expected_backup_missed"), Tier::Customer, "hu");
        assert!(
            b.contains("célhely: nas-1") && b.contains("2024. 05. 01. 06:00"),
            "{b}"
        );
        let (_, b) = render(&event("host_stale"), Tier::Operator, "en");
        // 11:00+02:00 is 09:00 UTC.
        assert!(b.contains("since 2024-05-01 09:00 UTC"), "{b}");
        let (s, _) = render(&event("host_recovered"), Tier::Customer, "en-GB");
        assert_eq!(s, "[MFTPlus] Host recovered: host-7");
    }

    #[test]
    fn unknown_kinds_get_a_generic_text() {
        let (s, b) = render(&event("disk_full"), Tier::Operator, "en");
        assert_eq!(s, "[Kovács Kft.] Fleet event disk_full: host-7");
        assert!(b.contains("Event disk_full happened on host-7"));
        let (s, b) = render(&event("disk_full"), Tier::Customer, "hu");
        assert!(s.contains("Értesítés a flottáról"));
        assert!(b.contains("(disk_full)"));
    }

    #[test]
    fn guest_and_missing_host_name_the_subject() {
        let mut ev = event("host_down");
        ev.guest_id = Some("vm-3".into());
        assert!(render(&ev, Tier::Operator, "en").0.ends_with("host-7/vm-3"));
        ev.host_id = None;
        ev.guest_id = None;
        ev.at = "not a time".into();
        let (s, b) = render(&ev, Tier::Customer, "hu");
        assert!(s.ends_with("Kovács Kft."));
        assert!(b.contains("not a time óta"));
    }
}
