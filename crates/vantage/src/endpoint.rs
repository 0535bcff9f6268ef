//! Which Vantage server the client commands (`--from`, `vantage agents`) talk to, and with which
//! API token.
//!
//! Each value is taken from the first place that has it: the flag (`--server`, `--token`), the
//! environment (`VANTAGE_SERVER`, `VANTAGE_TOKEN`), the client file, and for the URL only the
//! server's own default address (`http://127.0.0.1:7780`, so a server started with no flags on
//! the same host needs no configuration). The client file is TOML with the keys `server` and
//! `token`: `$VANTAGE_CLIENT_CONFIG` when set (it must exist), otherwise
//! `$XDG_CONFIG_HOME/vantage/client.toml` or `~/.config/vantage/client.toml` when present.
//! Unknown keys are refused, so a typo cannot silently fall back to a default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::ServerConnArgs;

/// Environment variable of the server URL.
pub const ENV_SERVER: &str = "VANTAGE_SERVER";
/// Environment variable of the API token.
pub const ENV_TOKEN: &str = "VANTAGE_TOKEN";
/// Environment variable naming the client file.
pub const ENV_CLIENT_CONFIG: &str = "VANTAGE_CLIENT_CONFIG";

/// A server to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// API base URL, `http://HOST:PORT`.
    pub url: String,
    /// Bearer token.
    pub token: String,
}

/// The client file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    server: Option<String>,
    token: Option<String>,
}

/// The client file's path: the one named by `VANTAGE_CLIENT_CONFIG`, or the default one when it
/// exists. The flag tells whether the file was asked for explicitly (then it must exist).
fn client_file_path(env: &dyn Fn(&str) -> Option<String>) -> Option<(PathBuf, bool)> {
    if let Some(p) = env(ENV_CLIENT_CONFIG).filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(p), true));
    }
    let base = env("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| Path::new(&h).join(".config"))
        })?;
    let path = base.join("vantage").join("client.toml");
    path.is_file().then_some((path, false))
}

fn read_client_file(path: &Path) -> Result<ClientFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the client file {}: {e}", path.display()))?;
    let file: ClientFile = toml::from_str(&text).map_err(|e| {
        format!(
            "the client file {} is not valid: {}",
            path.display(),
            e.message()
        )
    })?;
    if file.token.is_some() {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            eprintln!(
                "vantage: warning: {} holds an API token and others may read it; chmod 600 it",
                path.display()
            );
        }
    }
    Ok(file)
}

/// Resolves the endpoint from the flags, the process environment and the client file.
pub fn resolve(args: &ServerConnArgs) -> Result<Endpoint, String> {
    resolve_with(args, &|k| std::env::var(k).ok())
}

/// [`resolve`] with the environment passed in (tests).
fn resolve_with(
    args: &ServerConnArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Endpoint, String> {
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let mut url = nonempty(args.url.clone()).or_else(|| nonempty(env(ENV_SERVER)));
    let mut token = nonempty(args.token.clone()).or_else(|| nonempty(env(ENV_TOKEN)));
    let mut file_used = None;
    if (url.is_none() || token.is_none())
        && let Some((path, explicit)) = client_file_path(env)
    {
        if explicit && !path.is_file() {
            return Err(format!(
                "{ENV_CLIENT_CONFIG} names {}, which does not exist",
                path.display()
            ));
        }
        let file = read_client_file(&path)?;
        url = url.or(nonempty(file.server));
        token = token.or(nonempty(file.token));
        file_used = Some(path);
    }
    let url = url.unwrap_or_else(|| format!("http://{}", vantage_server::config::DEFAULT_LISTEN));
    let Some(token) = token else {
        let file = file_used
            .map(|p| format!(" ({} has none)", p.display()))
            .unwrap_or_default();
        return Err(format!(
            "no API token for the server at {url}{file}: pass --token, set {ENV_TOKEN}, or put \
             token = \"...\" in ~/.config/vantage/client.toml (the server prints its admin token \
             when it first starts)"
        ));
    };
    Ok(Endpoint {
        url: url.trim().to_string(),
        token: token.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn args(url: Option<&str>, token: Option<&str>) -> ServerConnArgs {
        ServerConnArgs {
            url: url.map(str::to_string),
            token: token.map(str::to_string),
        }
    }

    #[test]
    fn flags_win_over_the_environment_and_the_environment_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client.toml");
        std::fs::write(
            &file,
            "server = \"http://file:1\"\ntoken = \"file-token\"\n",
        )
        .unwrap();
        let env = env_of(&[
            (ENV_CLIENT_CONFIG, file.display().to_string()),
            (ENV_SERVER, "http://env:2".into()),
        ]);
        let e = resolve_with(&args(None, None), &env).unwrap();
        assert_eq!(e.url, "http://env:2");
        assert_eq!(e.token, "file-token");
        let e = resolve_with(&args(Some("http://flag:3"), Some("flag-token")), &env).unwrap();
        assert_eq!(
            e,
            Endpoint {
                url: "http://flag:3".into(),
                token: "flag-token".into()
            }
        );
    }

    #[test]
    fn the_default_file_under_the_config_home_is_read_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_of(&[("XDG_CONFIG_HOME", dir.path().display().to_string())]);
        let e = resolve_with(&args(None, None), &env).unwrap_err();
        assert!(e.contains("no API token"), "{e}");
        assert!(e.contains("http://127.0.0.1:7780"), "{e}");
        std::fs::create_dir_all(dir.path().join("vantage")).unwrap();
        std::fs::write(
            dir.path().join("vantage/client.toml"),
            "token = \"from-file\"\n",
        )
        .unwrap();
        let e = resolve_with(&args(None, None), &env).unwrap();
        assert_eq!(e.url, "http://127.0.0.1:7780");
        assert_eq!(e.token, "from-file");
    }

    #[test]
    fn a_bad_or_missing_named_file_is_a_sentence_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client.toml");
        let env = env_of(&[(ENV_CLIENT_CONFIG, file.display().to_string())]);
        let e = resolve_with(&args(None, None), &env).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        std::fs::write(&file, "srever = \"http://x:1\"\n").unwrap();
        let e = resolve_with(&args(None, None), &env).unwrap_err();
        assert!(e.contains("srever") && e.contains("client.toml"), "{e}");
    }
}
