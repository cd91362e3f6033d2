//! Never built: this package exists so `cargo fetch` downloads the corpus.
