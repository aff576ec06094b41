//! Embeds every shaders/*.wgsl file into the binary: the registry looks kernels up by
//! file stem, so adding a shader needs no Rust list to be kept in step. The headers
//! under shaders/include/ (structs a family's files share) are embedded beside them
//! and spliced in where a shader says `// #include NAME`.
use std::{env, fs, path::Path};

fn main() {
    // Read at run time, not with env!: a build script binary reused from another
    // checkout's target dir would otherwise embed that checkout's shaders.
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("shaders");
    let mut out = embed("EMBEDDED", &dir);
    out.push_str(&embed("INCLUDES", &dir.join("include")));
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("embedded_shaders.rs");
    fs::write(dest, out).expect("write embedded_shaders.rs");
}

/// A `static NAME: &[(stem, text)]` of the .wgsl files directly in `dir`.
fn embed(name: &str, dir: &Path) -> String {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("shaders/ directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    names.sort();
    let mut out = format!("pub static {name}: &[(&str, &str)] = &[\n");
    for file in &names {
        let stem = file.trim_end_matches(".wgsl");
        let path = dir.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        out.push_str(&format!(
            "    ({stem:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    out
}
