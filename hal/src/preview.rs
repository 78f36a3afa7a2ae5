//! PNG previews: the one windowing rule of every tomolab preview (phantom slices and projections, detector
//! frames, reconstructed slices, the synthetic 2D and the processed mammogram).
//!
//! The window runs from the 0.5th to the 99.5th percentile of the finite values (nearest rank below,
//! `sorted[floor((n - 1) q)]`), so a few hot or dead pixels do not set the contrast; values map linearly to
//! 0..=255, rounded, clamped outside the window (NaN is black, infinities saturate). Brighter is larger (for
//! attenuation or line integrals: denser tissue bright, as on a mammogram). A constant image is black.

use std::path::Path;

/// Lower and upper percentile of the window.
pub const WINDOW_PERCENTILES: (f64, f64) = (0.005, 0.995);

/// The 8-bit greyscale pixels of `image` under the preview window.
pub fn window_u8(image: &[f32]) -> Vec<u8> {
    let mut sorted: Vec<f32> = image.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let pick = |q: f64| sorted.get(((sorted.len().saturating_sub(1)) as f64 * q) as usize).copied().unwrap_or(0.0);
    let (lo, hi) = (pick(WINDOW_PERCENTILES.0), pick(WINDOW_PERCENTILES.1));
    let span = if hi > lo { hi - lo } else { 1.0 };
    image.iter().map(|&v| (((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8).collect()
}

/// Writes the row-major `cols` x `rows` `image` to `path` as a windowed 8-bit greyscale PNG ([`window_u8`]).
/// A size mismatch is an `InvalidInput` error; encoding failures keep their cause.
pub fn write_png(path: &Path, image: &[f32], cols: usize, rows: usize) -> std::io::Result<()> {
    if image.len() != cols * rows || cols == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} values for a {cols}x{rows} preview", image.len()),
        ));
    }
    let buffer = image::GrayImage::from_raw(cols as u32, rows as u32, window_u8(image))
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "preview size mismatch"))?;
    buffer.save_with_format(path, image::ImageFormat::Png).map_err(|e| match e {
        image::ImageError::IoError(io) => io,
        other => std::io::Error::other(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_ignores_outliers_and_maps_linearly() {
        // 1000 values 0..999 plus one hot pixel: the window is set by the 0.5th and 99.5th percentiles.
        let mut image: Vec<f32> = (0..1000).map(|v| v as f32).collect();
        image.push(1e9);
        let px = window_u8(&image);
        let lo = image[(1000.0 * 0.005) as usize];
        let hi = 995.0;
        assert_eq!(px[0], 0);
        assert_eq!(px[1000], 255);
        let mid = 500usize;
        let expect = (((mid as f32 - lo) / (hi - lo)) * 255.0).round() as u8;
        assert_eq!(px[mid], expect);
        assert!(px.windows(2).take(999).all(|w| w[0] <= w[1]), "monotone");
    }

    #[test]
    fn constant_and_non_finite_images() {
        assert!(window_u8(&[2.0; 16]).iter().all(|&p| p == 0));
        let px = window_u8(&[f32::NAN, 0.0, 1.0, f32::INFINITY]);
        assert_eq!((px[0], px[3]), (0, 255));
    }

    #[test]
    fn write_png_round_trips_size_and_refuses_a_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        let image: Vec<f32> = (0..12).map(|v| v as f32).collect();
        write_png(&path, &image, 4, 3).unwrap();
        let back = image::open(&path).unwrap().to_luma8();
        assert_eq!((back.width(), back.height()), (4, 3));
        assert_eq!(back.as_raw(), &window_u8(&image));
        let err = write_png(&dir.path().join("bad.png"), &image, 5, 3).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}
