//! The embedder on the shared model (`../shared/models/all-MiniLM-L6-v2`): dimension,
//! unit norm, paraphrases closer than unrelated texts, batching equal to one by one,
//! bad input.


use parley_ai::embed::{cosine, Embedder};

#[test]
fn embeddings_are_unit_vectors_and_paraphrases_are_close() {
    let Some(dir) = crate::common::model_dir() else { return };
    let e = Embedder::load(&dir).expect("load");
    assert_eq!(e.dim(), 384);
    let texts = [
        "My internet connection is not working.",
        "The broadband is down at my house.",
        "What time does your shop open on Saturday?",
        "I would like to cancel my contract.",
        "Please end my subscription.",
    ];
    let v = e.embed(&texts).expect("embed");
    assert_eq!(v.len(), texts.len());
    for x in &v {
        assert_eq!(x.len(), 384);
        let n: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "norm {n}");
    }
    let para = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    let cancel = cosine(&v[3], &v[4]);
    assert!(para > 0.5, "paraphrase {para}");
    assert!(cancel > 0.5, "paraphrase {cancel}");
    assert!(unrelated < 0.3, "unrelated {unrelated}");
    assert!(para > unrelated + 0.3);
    // A batch (padded to its longest text) gives what one-by-one gives.
    for (i, t) in texts.iter().enumerate() {
        let one = e.embed_one(t).expect("one");
        assert!(cosine(&one, &v[i]) > 0.9999, "{t}");
    }
}

#[test]
fn bad_input_still_embeds() {
    let Some(dir) = crate::common::model_dir() else { return };
    let e = Embedder::load(&dir).expect("load");
    let huge = "word ".repeat(200_000);
    for t in ["", "🙂🙂🙂", huge.as_str(), "\u{0}\u{feff}"] {
        let v = e.embed_one(t).expect("embed");
        assert_eq!(v.len(), 384);
        assert!(v.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn a_missing_model_is_a_typed_error() {
    let err = Embedder::load("/nonexistent/model").expect_err("missing");
    assert!(matches!(err, parley_ai::Error::ModelMissing { .. }), "{err}");
}
