//! Finds libbnorm for the linker: BNORM_LIB_DIR if set, else `pkg-config`.
//!
//! No build-dependency crates: the build has to work offline with nothing but
//! the standard library.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in [
        "BNORM_LIB_DIR",
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
    ] {
        println!("cargo:rerun-if-env-changed={}", var);
    }

    // An explicit directory wins, so a caller can pick one build among several
    // installed copies without touching pkg-config's search path.
    if let Some(dir) = env::var_os("BNORM_LIB_DIR") {
        let dir = dir.to_string_lossy().into_owned();
        if dir.is_empty() {
            fail("BNORM_LIB_DIR is set but empty");
        }
        println!("cargo:rustc-link-search=native={}", dir);
        println!("cargo:rustc-link-lib=dylib=bnorm");
        return;
    }

    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let output = match Command::new(&pkg_config)
        .args(["--libs", "--print-errors", "bnorm"])
        .output()
    {
        Ok(output) => output,
        Err(err) => fail(&format!("could not run `{}`: {}", pkg_config, err)),
    };
    if !output.status.success() {
        fail(&format!(
            "`{} --libs bnorm` failed: {}",
            pkg_config,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }

    let mut linked_bnorm = false;
    for flag in String::from_utf8_lossy(&output.stdout).split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={}", dir);
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={}", lib);
            linked_bnorm |= lib == "bnorm";
        }
    }
    if !linked_bnorm {
        fail("pkg-config's `--libs bnorm` does not mention -lbnorm");
    }
}

fn fail(reason: &str) -> ! {
    panic!(
        "bnorm: cannot locate libbnorm ({}).\n\
         Set BNORM_LIB_DIR to the directory holding libbnorm.so, or add \
         <prefix>/lib/pkgconfig to PKG_CONFIG_PATH (Debian: apt-get install pkg-config).",
        reason
    );
}
