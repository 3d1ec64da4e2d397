//! Serving containers that load the package themselves: vLLM started with `--load-format
//! secure-model` (the `secure_model` Python package's load format, docs/python.md). Such a pod
//! gets no init container and no model volume; its serving container is the loader, so it gets
//! the loader's settings instead: the profile's variables, its Secret variables and its Secret
//! volumes (read-only), and nothing else (no node cache, no LocalModelCache claim, no resource
//! change). This module recognises those containers and lists what they get; it reads no pod
//! and writes no operation ([`crate::mutation`] does both).

use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, SecretKeySelector, VolumeMount};

use crate::profile::Profile;

/// The load format of the `secure_model` Python package's vLLM plugin.
pub const LOAD_FORMAT: &str = "secure-model";

/// vLLM's flag naming the load format, in both spellings its argument parser accepts.
pub const LOAD_FORMAT_FLAGS: &[&str] = &["--load-format", "--load_format"];

/// The Python module whose `serve` command runs `vllm serve` with the load format
/// (`python -m secure_model.vllm serve SOURCE ...`).
pub const SERVE_MODULE: &str = "secure_model.vllm";

/// Whether `c`'s command line selects the `secure-model` load format: `--load-format
/// secure-model` or `--load-format=secure-model` (either flag spelling, quotes allowed), or
/// `secure_model.vllm serve` (the package's wrapper that adds it), in `command` or `args`,
/// also inside one shell string (`sh -c "... vllm serve ... --load-format secure-model"`).
pub fn loads_in_process(c: &Container) -> bool {
    let unquote = |w: &str| w.trim_matches(|ch| ch == '"' || ch == '\'').to_string();
    let words: Vec<String> = c
        .command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .flat_map(|s| s.split_whitespace())
        .map(unquote)
        .collect();
    let flag = |w: &str| LOAD_FORMAT_FLAGS.contains(&w);
    let joined = |w: &str| {
        LOAD_FORMAT_FLAGS.iter().any(|f| {
            w.strip_prefix(f)
                .and_then(|r| r.strip_prefix('='))
                .is_some_and(|v| unquote(v) == LOAD_FORMAT)
        })
    };
    words.iter().any(|w| joined(w))
        || words.windows(2).any(|p| match p {
            [f, v] => (flag(f) && v == LOAD_FORMAT) || (f == SERVE_MODULE && v == "serve"),
            _ => false,
        })
}

/// The variables a loader gets from `profile`, the init container and an in-process loader
/// alike: its plain settings, then its Secret variables by reference, each sorted by name
/// (the node cache's variables, the init container's only, are not among them).
pub fn env(profile: &Profile) -> Vec<EnvVar> {
    let plain = profile.env().iter().map(|(k, v)| EnvVar {
        name: k.clone(),
        value: Some(v.clone()),
        value_from: None,
    });
    let secret = profile.secret_env().iter().map(|(k, r)| EnvVar {
        name: k.clone(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
    });
    plain.chain(secret).collect()
}

/// The read-only mounts of `profile`'s Secret volumes (KEK files, trusted key files, a KBS CA)
/// at the paths the init container would see them.
pub fn mounts(profile: &Profile) -> Vec<VolumeMount> {
    profile
        .secret_volumes()
        .iter()
        .map(|v| VolumeMount {
            name: v.name.clone(),
            mount_path: v.mount_path.clone(),
            read_only: Some(true),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(command: &[&str], args: &[&str]) -> Container {
        let v = |s: &[&str]| Some(s.iter().map(|x| x.to_string()).collect());
        Container {
            name: "vllm".into(),
            command: v(command),
            args: v(args),
            ..Default::default()
        }
    }

    #[test]
    fn the_load_format_is_recognised_in_every_form() {
        let yes = [
            c(&["vllm", "serve"], &["/m", "--load-format", "secure-model"]),
            c(&[], &["--load-format=secure-model"]),
            c(&[], &["--load_format", "secure-model"]),
            c(&[], &["--load-format='secure-model'"]),
            c(&["vllm", "serve", "/m", "--load-format", "secure-model"], &[]),
            c(
                &["python", "-m", "secure_model.vllm", "serve"],
                &["secure+s3://b/m", "--port", "8000"],
            ),
            c(&["sh", "-c"], &["exec python3 -m secure_model.vllm serve \"$PKG\""]),
            c(
                &["sh", "-c"],
                &["python -m secure_model.vllm prepare \"$PKG\" /tmp/c &&\nexec vllm serve /tmp/c --load-format secure-model --model-loader-extra-config x"],
            ),
        ];
        for y in &yes {
            assert!(loads_in_process(y), "{y:?}");
        }
        let no = [
            c(&[], &[]),
            c(&["vllm", "serve"], &["--model=/mnt/models"]),
            c(&[], &["--load-format", "safetensors"]),
            c(&[], &["--load-format=secure-model-x"]),
            c(&[], &["secure-model", "--load-format"]),
            c(&[], &["--load-format", "--model", "secure-model"]),
            c(&[], &["--load-formats=secure-model"]),
            c(
                &["python", "-m", "secure_model.vllm", "prepare"],
                &["s", "/d"],
            ),
            c(&["python", "-m", "secure_model.vllm"], &[]),
        ];
        for n in &no {
            assert!(!loads_in_process(n), "{n:?}");
        }
    }
}
