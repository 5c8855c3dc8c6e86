//! Artwork in the sizes the web client shows (SoundCloud's names): `t500x500`, `t300x300` and
//! `large` (100×100), square JPEGs cut from the centre of a JPEG or PNG.

use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat};

/// The sizes, largest first: (name, pixels).
pub const SIZES: [(&str, u32); 3] = [("t500x500", 500), ("t300x300", 300), ("large", 100)];

/// Largest accepted artwork upload.
pub const MAX_BYTES: usize = 10 << 20;

/// Which accepted image format `bytes` are (JPEG or PNG), from their magic numbers.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else {
        None
    }
}

/// Every size as JPEG bytes. `Err` names what is wrong with the image (for a 4xx).
pub fn render(bytes: &[u8]) -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let format = sniff(bytes).ok_or("artwork must be a JPEG or PNG image")?;
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(8000);
    limits.max_image_height = Some(8000);
    limits.max_alloc = Some(512 << 20);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| format!("the image could not be read: {e}"))?;
    if img.width() < 1 || img.height() < 1 {
        return Err("the image is empty".into());
    }
    let side = img.width().min(img.height());
    let square = img.crop_imm(
        (img.width() - side) / 2,
        (img.height() - side) / 2,
        side,
        side,
    );
    let square = DynamicImage::ImageRgb8(square.to_rgb8());
    SIZES
        .iter()
        .map(|&(name, px)| {
            let sized = square.resize_exact(px, px, FilterType::Lanczos3);
            let mut out = std::io::Cursor::new(Vec::new());
            sized
                .write_to(&mut out, ImageFormat::Jpeg)
                .map_err(|e| format!("cannot encode artwork: {e}"))?;
            Ok((name, out.into_inner()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_png_becomes_three_square_jpegs() {
        let img = image::RgbImage::from_pixel(640, 320, image::Rgb([200, 10, 10]));
        let mut png = std::io::Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut png, ImageFormat::Png)
            .unwrap();
        let out = render(png.get_ref()).unwrap();
        assert_eq!(out.len(), 3);
        for ((name, jpeg), (want, px)) in out.iter().zip(SIZES) {
            assert_eq!(*name, want);
            let back = image::load_from_memory(jpeg).unwrap();
            assert_eq!((back.width(), back.height()), (px, px));
        }
    }

    #[test]
    fn not_an_image_is_refused() {
        assert!(render(b"GIF89a....").is_err());
        assert!(render(b"\x89PNG\r\n\x1a\ngarbage").is_err());
    }
}
