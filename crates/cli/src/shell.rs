//! `ghcache shell-init`: shell functions that make `gh` the cached gh.

/// Shells we print functions for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The functions `gh`, `gh_nocache` and `gh_cache_stats` for `shell`.
///
/// They call this very binary by its absolute path, so they work even when it is not on PATH;
/// `gh_nocache` uses `command gh`, which skips the function and runs the real gh.
pub fn init(shell: Shell) -> String {
    let exe = std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "ghcache".to_owned());
    let exe = quote(&exe);
    match shell {
        Shell::Bash | Shell::Zsh => format!(
            "# ghcache: route read-only gh commands through the cache\n\
             gh() {{ {exe} gh \"$@\"; }}\n\
             gh_nocache() {{ command gh \"$@\"; }}\n\
             gh_cache_stats() {{ {exe} stats \"$@\"; }}\n"
        ),
        Shell::Fish => format!(
            "# ghcache: route read-only gh commands through the cache\n\
             function gh; {exe} gh $argv; end\n\
             function gh_nocache; command gh $argv; end\n\
             function gh_cache_stats; {exe} stats $argv; end\n"
        ),
    }
}

/// Single-quotes `s` for POSIX shells and fish (both accept '\'' splicing... fish does not, so
/// paths with a quote fall back to double quotes with escapes).
fn quote(s: &str) -> String {
    if !s.contains('\'') {
        return format!("'{s}'");
    }
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' | '$' | '`' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}
