//! QR codes for token enrolment: a PNG file for the administrator to hand over, and a
//! terminal rendering for when the CLI runs interactively.

use anyhow::{Context, Result};
use qrcode::{Color, QrCode};
use std::path::Path;

const QUIET: usize = 4;
const SCALE: usize = 8;

fn code(data: &str) -> Result<QrCode> {
    QrCode::new(data.as_bytes()).context("the enrolment URI does not fit in a QR code")
}

/// Write `data` as a black-on-white PNG, 8 pixels per module, with the standard quiet zone.
/// The file is created owner-only: it holds the token's secret.
pub fn write_png(data: &str, path: &Path) -> Result<()> {
    let qr = code(data)?;
    let w = qr.width();
    let colors = qr.to_colors();
    let side = (w + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            let (x, y) = (i % w + QUIET, i / w + QUIET);
            for dy in 0..SCALE {
                let row = (y * SCALE + dy) * side;
                pixels[row + x * SCALE..row + (x + 1) * SCALE].fill(0);
            }
        }
    }
    let _ = std::fs::remove_file(path);
    let file =
        tessera_store::create_private(path).with_context(|| format!("{}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), side as u32, side as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().context("writing PNG header")?;
    writer
        .write_image_data(&pixels)
        .context("writing PNG data")?;
    writer.finish().context("finishing PNG")?;
    Ok(())
}

/// Render `data` with half-block characters, two modules rows per text line.
pub fn terminal(data: &str) -> Result<String> {
    let qr = code(data)?;
    let w = qr.width();
    let colors = qr.to_colors();
    let dark = |x: isize, y: isize| -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < w
            && colors[y as usize * w + x as usize] == Color::Dark
    };
    let q = QUIET as isize;
    let mut out = String::new();
    let mut y = -q;
    while y < w as isize + q {
        for x in -q..w as isize + q {
            // Light modules are drawn as blocks so the code reads on dark terminals too.
            out.push(match (dark(x, y), dark(x, y + 1)) {
                (false, false) => '█',
                (true, false) => '▄',
                (false, true) => '▀',
                (true, true) => ' ',
            });
        }
        out.push('\n');
        y += 2;
    }
    Ok(out)
}

/// `data` as an SVG image (one path of unit squares), for the console's enrolment page.
pub fn svg(data: &str) -> Result<String> {
    let qr = code(data)?;
    let w = qr.width();
    let side = w + 2 * QUIET;
    let mut path = String::new();
    for (i, c) in qr.to_colors().iter().enumerate() {
        if *c == Color::Dark {
            let (x, y) = (i % w + QUIET, i / w + QUIET);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" width=\"{px}\" height=\"{px}\" role=\"img\" aria-label=\"QR code of the enrolment URI\" shape-rendering=\"crispEdges\"><rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>",
        px = side * 6
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn png_is_written_and_private() {
        let p = std::env::temp_dir().join(format!("tessera-qr-{}.png", std::process::id()));
        super::write_png("otpauth://totp/tessera:alice?secret=JBSWY3DPEHPK3PXP", &p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::remove_file(&p).unwrap();
        assert!(super::terminal("x").unwrap().lines().count() > 10);
    }
}
