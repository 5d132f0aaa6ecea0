//! The embedder on the shared model (`../shared/models/all-MiniLM-L6-v2`): dimension,
//! unit norm, paraphrases closer than unrelated texts, batching equal to one by one,
//! bad input.

use parley_ai::embed::{Embedder, cosine};

#[test]
fn embeddings_are_unit_vectors_and_paraphrases_are_close() {
    let Some(dir) = crate::common::model_dir() else {
        return;
    };
    let e = Embedder::load(&dir).expect("load");
    assert_eq!(e.dim(), 384);
    // Pairs from sentence-transformers' own examples and of this domain.
    let texts = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The new movie is awesome.",
        "How do I reset my password?",
        "I forgot my password, how can I change it?",
    ];
    let v = e.embed(&texts).expect("embed");
    assert_eq!(v.len(), texts.len());
    for x in &v {
        assert_eq!(x.len(), 384);
        let n: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "norm {n}");
    }
    let food = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    let password = cosine(&v[3], &v[4]);
    let cross = cosine(&v[3], &v[0]);
    eprintln!("food {food:.3} unrelated {unrelated:.3} password {password:.3} cross {cross:.3}");
    assert!(food > 0.6, "paraphrase {food}");
    assert!(password > 0.6, "paraphrase {password}");
    assert!(
        unrelated < 0.2 && cross < 0.2,
        "unrelated {unrelated} {cross}"
    );
    // A batch (padded to its longest text) gives what one-by-one gives.
    for (i, t) in texts.iter().enumerate() {
        let one = e.embed_one(t).expect("one");
        assert!(cosine(&one, &v[i]) > 0.9999, "{t}");
    }
}

#[test]
fn bad_input_still_embeds() {
    let Some(dir) = crate::common::model_dir() else {
        return;
    };
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
    assert!(
        matches!(err, parley_ai::Error::ModelMissing { .. }),
        "{err}"
    );
}
