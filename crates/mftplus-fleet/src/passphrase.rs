//! Retrieval passwords as Hungarian passphrases: easy to read out over the phone to a
//! customer, typed on a keyboard without Hungarian layout (the words are ASCII-folded:
//! `kenyér` is written `kenyer`).

use rand::{rngs::OsRng, seq::SliceRandom};

/// Words in a passphrase.
pub const WORDS_PER_PASSPHRASE: usize = 5;

/// Common Hungarian words (nouns and adjectives), ASCII-folded, unique, lower case.
// One word per line would make this list 370 lines long; it is data, kept compact.
#[rustfmt::skip]
pub const WORDS: &[&str] = &[
    "alma", "asztal", "ablak", "ajto", "auto", "arany", "agy", "alom", "anya", "apa", "arc",
    "erdo", "eger", "eso", "ember", "elet", "etel", "ev", "ej", "eg", "fa", "fal", "fold",
    "folyo", "fecske", "fenyo", "felho", "fazek", "fesu", "gomba", "golyo", "gyertya", "gyumolcs",
    "gyerek", "haz", "hajo", "hal", "hegy", "hid", "ho", "hold", "homok", "hang", "harang",
    "hattyu", "ido", "ing", "iskola", "iroda", "jeg", "jatek", "juh", "kert", "ko", "kapu",
    "kalap", "kanal", "kard", "kecske", "kenyer", "kep", "kez", "kocsi", "konyv", "kor", "korte",
    "kulcs", "kut", "labda", "lampa", "level", "lo", "liszt", "lanc", "lepke", "macska", "malom",
    "mez", "meggy", "madar", "mokus", "nap", "nyar", "nyul", "nyereg", "orom", "ora", "orszag",
    "osz", "papir", "patak", "polc", "pohar", "posta", "rozsa", "reggel", "repa", "roka", "szek",
    "szel", "sziv", "szem", "szilva", "szoba", "so", "sajt", "sator", "tal", "tanya", "tej",
    "tel", "to", "torony", "tuz", "teve", "ut", "udvar", "uborka", "var", "viz", "volgy", "vaza",
    "zseb", "zold", "zene", "zokni", "zab", "kek", "piros", "sarga", "feher", "fekete", "barna",
    "szurke", "lila", "nagy", "kicsi", "hosszu", "rovid", "magas", "alacsony", "szep", "jo", "uj",
    "regi", "friss", "meleg", "hideg", "gyors", "lassu", "kedves", "vidam", "csendes", "okos",
    "bator", "eros", "puha", "kemeny", "edes", "savanyu", "tiszta", "tavoli", "kozeli", "vilagos",
    "sotet", "boldog", "furge", "szeles", "keskeny", "kerek", "ures", "teli", "csinos", "halk",
    "hangos", "ritka", "suru", "vekony", "vastag", "barack", "bab", "banan", "bor", "borso",
    "csiga", "csillag", "csizma", "csonak", "dio", "dinnye", "dob", "domb", "ecset", "ernyo",
    "fuzet", "fuvola", "gitar", "hegedu", "kakas", "kacsa", "kutya", "liba", "medve", "oroszlan",
    "pok", "pava", "sas", "rigo", "szarvas", "tigris", "teknos", "tehen", "varju", "zebra",
    "bagoly", "cica", "delfin", "farkas", "galamb", "harcsa", "hangya", "hollo", "ponty", "sun",
    "vakond", "zsiraf", "bogar", "cinege", "gerle", "kigyo", "kenguru", "majom", "birka", "borju",
    "csiko", "malac", "pulyka", "tyuk", "oz", "kagylo", "csuka", "falu", "varos", "utca", "ter",
    "piac", "bolt", "mozi", "szinhaz", "muzeum", "konyvtar", "kastely", "templom", "kikoto",
    "allomas", "strand", "park", "liget", "mezo", "ret", "sziget", "tenger", "part", "barlang",
    "szikla", "forras", "vizeses", "mocsar", "leves", "pogacsa", "retes", "kalacs", "palacsinta",
    "gulyas", "lecso", "kolbasz", "szalonna", "turo", "vaj", "tojas", "rizs", "paprika", "hagyma",
    "fokhagyma", "krumpli", "kaposzta", "salata", "cukor", "szolo", "eper", "malna", "ribizli",
    "citrom", "narancs", "kave", "tea", "kakao", "lekvar", "bogre", "tanyer", "villa", "kes",
    "serpenyo", "lada", "kosar", "taska", "borond", "kabat", "sapka", "sal", "kesztyu", "cipo",
    "nadrag", "szoknya", "ruha", "ov", "gomb", "tu", "cerna", "ollo", "ceruza", "toll", "radir",
    "vonalzo", "terkep", "iranytu", "lampas", "gyufa", "kotel", "letra", "kalapacs", "szog",
    "furesz", "festek", "vodor", "locsolo", "kapa", "gereblye", "talicska", "kerekpar", "vonat",
    "busz", "villamos", "repulo", "vitorla", "horgony", "kormany", "motor", "tavasz", "hajnal",
    "alkony", "este", "del", "eszak", "kelet", "nyugat", "villam", "szivarvany", "harmat", "kod",
    "jegcsap", "hopehely", "napfeny", "holdfeny", "bolygo", "uszoda",
];

/// A fresh passphrase: [`WORDS_PER_PASSPHRASE`] words drawn uniformly and independently from
/// [`WORDS`] with the OS RNG, joined by `-`; at least 40 bits of entropy.
pub fn hungarian_passphrase() -> String {
    let mut rng = OsRng;
    (0..WORDS_PER_PASSPHRASE)
        .map(|_| *WORDS.choose(&mut rng).expect("the word list is not empty"))
        .collect::<Vec<_>>()
        .join("-")
}

/// Bits of entropy of a passphrase from [`hungarian_passphrase`].
pub fn entropy_bits() -> f64 {
    WORDS_PER_PASSPHRASE as f64 * (WORDS.len() as f64).log2()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn list_is_large_unique_and_plain_ascii() {
        assert!(WORDS.len() >= 256, "{} words", WORDS.len());
        let unique: BTreeSet<_> = WORDS.iter().collect();
        assert_eq!(unique.len(), WORDS.len(), "duplicate words");
        for word in WORDS {
            assert!(
                !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()),
                "{word}"
            );
        }
    }

    #[test]
    fn entropy_is_at_least_40_bits() {
        assert!(entropy_bits() >= 40.0, "{} bits", entropy_bits());
    }

    #[test]
    fn passphrases_have_five_listed_words_and_differ() {
        let a = hungarian_passphrase();
        let parts: Vec<_> = a.split('-').collect();
        assert_eq!(parts.len(), WORDS_PER_PASSPHRASE, "{a}");
        assert!(parts.iter().all(|p| WORDS.contains(p)), "{a}");
        // Two draws colliding has probability 2^-40; a constant output would fail here.
        let draws: BTreeSet<_> = (0..8).map(|_| hungarian_passphrase()).collect();
        assert_eq!(draws.len(), 8);
    }
}
