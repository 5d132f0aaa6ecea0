//! Language, sentiment and entities, as data: `tests/fixtures/entities.tsv`
//! (text, then the expected `kind=value` pairs).

use parley_ai::signals::{entities, language, sentiment};
use parley_cases::triage::Sentiment;

#[test]
fn entities_fixture() {
    let fixture = include_str!("../fixtures/entities.tsv");
    for line in fixture
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let mut f = line.split('\t');
        let text = f.next().unwrap_or_default();
        let mut want: Vec<String> = f.map(str::to_owned).collect();
        want.sort();
        let mut got: Vec<String> = entities(text)
            .into_iter()
            .map(|e| format!("{}={}", e.kind, e.value))
            .collect();
        got.sort();
        assert_eq!(got, want, "{text}");
    }
}

#[test]
fn languages() {
    for (text, want) in [
        ("My internet has been down since yesterday evening.", "en"),
        (
            "Mein Internet funktioniert seit gestern Abend nicht mehr.",
            "de",
        ),
        (
            "Mi conexión a internet no funciona desde ayer por la tarde.",
            "es",
        ),
        (
            "Ma connexion internet ne fonctionne plus depuis hier soir.",
            "fr",
        ),
        ("ok thanks", "en"),
        // Regression: whatlang took this for French (Latin-rooted nouns).
        (
            "Our hospital's phone lines are all down, patients cannot reach us.",
            "en",
        ),
        ("👍", "und"),
        ("", "und"),
    ] {
        assert_eq!(language(text), want, "{text}");
    }
}

#[test]
fn sentiments() {
    for (text, want) in [
        (
            "This is terrible, I am furious and disgusted.",
            Sentiment::Negative,
        ),
        ("Great service, thank you so much!", Sentiment::Positive),
        ("The engineer visits on Tuesday.", Sentiment::Neutral),
    ] {
        let (got, score) = sentiment(text);
        assert_eq!(got, want, "{text}: {score}");
    }
}
