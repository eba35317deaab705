//! The skeleton's contract: two texts with the same skeleton normalize to
//! the same text. Each text that has a skeleton is rebuilt from it with
//! other constants (numbers of other lengths, strings with quotes, spaces,
//! comment and dollar characters, non-ASCII), and every rebuilt text must
//! have the same skeleton and the same normalized form as the original.

use pgpulse_sql::{normalize, skeleton};
use proptest::prelude::*;

/// A small deterministic generator (the variants need no more).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// `skel` with each blanked constant replaced by a random one of its kind.
fn rebuild(skel: &[u8], rng: &mut Rng) -> String {
    const NUMBERS: &[&str] = &["0", "7", "42", "007", "123456789012345678901234567890"];
    const STRINGS: &[&str] = &[
        "''",
        "'x'",
        "'it''s'",
        "' -- /* $1 $$ '",
        "'été ☃'",
        "'1.5e3'",
        "'line\nbreak'",
        "''''",
    ];
    let mut out = Vec::new();
    let mut i = 0;
    while i < skel.len() {
        if skel[i] == 0 {
            let pick = if skel[i + 1] == b'n' {
                rng.pick(NUMBERS)
            } else {
                rng.pick(STRINGS)
            };
            out.extend_from_slice(pick.as_bytes());
            i += 2;
        } else {
            out.push(skel[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("rebuilt from UTF-8 pieces")
}

/// Checks the contract for `text` with `variants` rebuilt texts; returns
/// whether `text` had a skeleton.
fn check(text: &str, variants: usize, seed: u64) -> bool {
    let mut skel = Vec::new();
    if skeleton(text.as_bytes(), &mut skel).is_none() {
        return false;
    }
    let expected = normalize(text);
    let mut rng = Rng(seed | 1);
    let mut again = Vec::new();
    for _ in 0..variants {
        let variant = rebuild(&skel, &mut rng);
        assert!(
            skeleton(variant.as_bytes(), &mut again).is_some(),
            "{variant:?} (from {text:?}) has no skeleton"
        );
        assert_eq!(again, skel, "{variant:?} from {text:?}");
        assert_eq!(
            normalize(&variant),
            expected,
            "{variant:?} and {text:?} share a skeleton"
        );
    }
    true
}

#[test]
fn corpus_texts_with_the_same_skeleton_normalize_the_same() {
    let mut with_skeleton = 0;
    let entries: Vec<&str> = include_str!("corpus.sql")
        .split("\n-- @@\n")
        .map(str::trim)
        .collect();
    for (i, e) in entries.iter().enumerate() {
        with_skeleton += usize::from(check(e, 20, i as u64 + 1));
    }
    // Most of the corpus is handled (the rest has comments, `$` or escapes).
    assert!(
        with_skeleton * 10 >= entries.len() * 8,
        "{with_skeleton} of {}",
        entries.len()
    );
}

/// Fragments whose every adjacency is worth trying: numbers next to dots,
/// letters, underscores and signs; string prefixes; lists and VALUES.
const PIECES: &[&str] = &[
    "1", "42", "0", ".", "..", "e", "E", "x", "_", "-", "+", "'a'", "'b''c'", "\"q1\"", " ", "\n",
    "(", ")", ",", "::", "int", "IN", "VALUES", "ARRAY[", "]", "SELECT", "t", "t1", "=", "&", "U",
    "é", "*", "/", "<", ">", "!", "LIMIT", ";", "\"", "$", "$$", "--", "/*", "*/", "\\", "'",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_texts_with_the_same_skeleton_normalize_the_same(
        picks in prop::collection::vec(0..PIECES.len(), 1..24),
        seed in any::<u64>(),
    ) {
        let text: String = picks.iter().map(|&i| PIECES[i]).collect();
        check(&text, 8, seed);
    }
}
