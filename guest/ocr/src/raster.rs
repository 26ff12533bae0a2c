//! A minimal RGB8 raster and the pixel operations the pipeline needs:
//! bilinear resize (OpenCV's `INTER_LINEAR` sampling), crop, padding, rotation
//! and conversion to normalized CHW tensors in PaddleOCR's BGR channel order.

/// An RGB image, 3 bytes per pixel, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Rgb {
    pub fn new(width: usize, height: usize, fill: u8) -> Rgb {
        Rgb {
            width,
            height,
            data: vec![fill; width * height * 3],
        }
    }

    #[cfg(test)]
    pub fn px(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Bilinear resize to `w`×`h` with pixel-center alignment, as OpenCV's
    /// `cv2.resize(..., INTER_LINEAR)` that PaddleOCR uses.
    ///
    /// Separable: each source row in use is interpolated across once, and
    /// output rows blend two such rows. An upscaled crop (a text line to
    /// the recognizer's 48 px) reuses each source row for several output
    /// rows. The floats are those of interpolating each output pixel on
    /// its own (`top`, `bot`, then the blend, in that order).
    pub fn resize(&self, w: usize, h: usize) -> Rgb {
        if self.width == 0 || self.height == 0 || w == 0 || h == 0 {
            return Rgb::new(w, h, 0);
        }
        // Filled row by row, never zeroed first.
        let mut out = Rgb { width: w, height: h, data: Vec::with_capacity(w * h * 3) };
        let xs = axis(self.width, w);
        let ys = axis(self.height, h);
        let stride = self.width * 3;
        let across = |y: usize, dst: &mut [f32]| interpolate_row(&self.data[y * stride..][..stride], &xs, dst);
        // Two source rows interpolated across, and which rows they are.
        let mut slots = [vec![0f32; w * 3], vec![0f32; w * 3]];
        let mut held = [usize::MAX; 2];
        for &(y0, y1, fy) in ys.iter() {
            let i0 = match held.iter().position(|&r| r == y0) {
                Some(i) => i,
                None => {
                    let i = if held[0] == y1 { 1 } else { 0 };
                    across(y0, &mut slots[i]);
                    held[i] = y0;
                    i
                }
            };
            let i1 = match held.iter().position(|&r| r == y1) {
                Some(i) => i,
                None => {
                    across(y1, &mut slots[1 - i0]);
                    held[1 - i0] = y1;
                    1 - i0
                }
            };
            blend_rows(&slots[i0], &slots[i1], fy, &mut out.data);
        }
        out
    }

    /// The pixels in [x0, x1) × [y0, y1), clamped to the image.
    pub fn crop(&self, x0: usize, y0: usize, x1: usize, y1: usize) -> Rgb {
        let x1 = x1.min(self.width);
        let y1 = y1.min(self.height);
        let x0 = x0.min(x1);
        let y0 = y0.min(y1);
        let w = x1 - x0;
        let mut out = Rgb { width: w, height: y1 - y0, data: Vec::with_capacity(w * (y1 - y0) * 3) };
        for y in y0..y1 {
            let src = (y * self.width + x0) * 3;
            out.data.extend_from_slice(&self.data[src..src + w * 3]);
        }
        out
    }

    /// This image placed at (left, top) on a `w`×`h` canvas of `fill`.
    #[cfg(test)]
    pub fn pad(&self, left: usize, top: usize, w: usize, h: usize, fill: u8) -> Rgb {
        let mut out = Rgb::new(w, h, fill);
        let cw = self.width.min(w.saturating_sub(left));
        for y in 0..self.height.min(h.saturating_sub(top)) {
            let src = y * self.width * 3;
            let dst = ((y + top) * w + left) * 3;
            out.data[dst..dst + cw * 3].copy_from_slice(&self.data[src..src + cw * 3]);
        }
        out
    }

    /// Rotated by 180°.
    pub fn rotate180(&self) -> Rgb {
        let mut out = Rgb::new(self.width, self.height, 0);
        let n = self.width * self.height;
        for i in 0..n {
            let j = n - 1 - i;
            out.data[j * 3..j * 3 + 3].copy_from_slice(&self.data[i * 3..i * 3 + 3]);
        }
        out
    }

    /// Rotated by 90° counter-clockwise (numpy's `rot90`), for vertical text.
    pub fn rotate90ccw(&self) -> Rgb {
        let (w, h) = (self.width, self.height);
        let mut out = Rgb::new(h, w, 0);
        for y in 0..h {
            for x in 0..w {
                // (x, y) goes to (y, w-1-x) in an h-wide image.
                let d = ((w - 1 - x) * h + y) * 3;
                let s = (y * w + x) * 3;
                out.data[d..d + 3].copy_from_slice(&self.data[s..s + 3]);
            }
        }
        out
    }

    /// Writes the image into `dst` (len ≥ 3·dst_w·height) as planar BGR,
    /// `(v/255 - mean[c]) / std[c]`, in a tensor row `dst_w` wide; columns
    /// past this image's width keep what `dst` holds (the caller's padding).
    #[cfg(test)]
    pub fn to_chw_bgr(&self, dst: &mut [f32], dst_w: usize, dst_h: usize, mean: [f32; 3], std: [f32; 3]) {
        let lut = luts(mean, std);
        let plane = dst_w * dst_h;
        let w = self.width.min(dst_w);
        let (b_plane, rest) = dst.split_at_mut(plane);
        let (g_plane, r_plane) = rest.split_at_mut(plane);
        for y in 0..self.height.min(dst_h) {
            let row = &self.data[y * self.width * 3..][..w * 3];
            let o = y * dst_w;
            let (bo, go, ro) = (&mut b_plane[o..o + w], &mut g_plane[o..o + w], &mut r_plane[o..o + w]);
            // Channel c of the tensor is B, G, R for c = 0, 1, 2.
            for (x, p) in row.chunks_exact(3).enumerate() {
                bo[x] = lut[0][p[2] as usize];
                go[x] = lut[1][p[1] as usize];
                ro[x] = lut[2][p[0] as usize];
            }
        }
    }

    /// This image as a planar BGR tensor, `(v/255 - mean[c]) / std[c]`, of
    /// `w`×`h` with the image at (left, top) and `pad[c]` around it: what
    /// `to_chw_bgr` makes of the image on a canvas already holding the
    /// padding (the same floats), built in one pass, without the canvas and
    /// without zeroing a tensor that is then overwritten.
    pub fn chw_bgr_padded(&self, left: usize, top: usize, w: usize, h: usize, pad: [f32; 3], mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
        let lut = luts(mean, std);
        let cw = self.width.min(w.saturating_sub(left));
        let rows = self.height.min(h.saturating_sub(top));
        let mut out = Vec::with_capacity(3 * w * h);
        // Channel c of the tensor is B, G, R for c = 0, 1, 2: byte 2 - c.
        for (c, table) in lut.iter().enumerate() {
            let pad = pad[c];
            out.extend(std::iter::repeat(pad).take(top.min(h) * w));
            for y in 0..rows {
                let row = &self.data[y * self.width * 3..][..cw * 3];
                out.extend(std::iter::repeat(pad).take(left.min(w)));
                out.extend(row.chunks_exact(3).map(|p| table[p[2 - c] as usize]));
                out.extend(std::iter::repeat(pad).take(w - left.min(w) - cw));
            }
            out.extend(std::iter::repeat(pad).take((h - top.min(h) - rows) * w));
        }
        out
    }
}

/// The tensor values of byte `v` in each channel (B, G, R order of
/// `mean` and `std`), as the normalisation computes them.
pub fn normalized(v: u8, mean: [f32; 3], std: [f32; 3]) -> [f32; 3] {
    let l = luts(mean, std);
    [l[0][v as usize], l[1][v as usize], l[2][v as usize]]
}

/// Interpolates source row `row` across to the output's columns: for
/// each (x0, x1, fx) of `xs`, three floats `a + (b - a)·fx` of the bytes of
/// pixels x0 and x1, into `dst`.
fn interpolate_row(row: &[u8], xs: &[(usize, usize, f32)], dst: &mut [f32]) {
    for (o, &(x0, x1, fx)) in dst.chunks_exact_mut(3).zip(xs.iter()) {
        let (a, b) = (&row[x0 * 3..x0 * 3 + 3], &row[x1 * 3..x1 * 3 + 3]);
        for k in 0..3 {
            o[k] = a[k] as f32 + (b[k] as f32 - a[k] as f32) * fx;
        }
    }
}

/// Appends to `out` the bytes `(t + (b - t)·fy + 0.5).floor() as u8` of
/// each pair of `top` and `bot`: the vertical half of the resize.
#[cfg(not(target_arch = "wasm32"))]
fn blend_rows(top: &[f32], bot: &[f32], fy: f32, out: &mut Vec<u8>) {
    blend_tail(top, bot, fy, out);
}

/// `as u8` saturates (NaN → 0), which is the clamp to 0..=255; f32::max/min
/// would be calls in wasm.
fn blend_tail(top: &[f32], bot: &[f32], fy: f32, out: &mut Vec<u8>) {
    out.extend(top.iter().zip(bot.iter()).map(|(&t, &b)| (t + (b - t) * fy + 0.5).floor() as u8));
}

/// blend_rows sixteen bytes at a time: the same float operations in each
/// lane, then a saturating truncation to i32 and saturating narrowings to
/// i16 and u8, which together clamp as `as u8` does (NaN → 0, below 0 → 0,
/// above 255 → 255); the floor makes the truncation exact.
#[cfg(target_arch = "wasm32")]
fn blend_rows(top: &[f32], bot: &[f32], fy: f32, out: &mut Vec<u8>) {
    use core::arch::wasm32::*;
    let n = top.len().min(bot.len());
    let n16 = n / 16 * 16;
    let (vf, half) = (f32x4_splat(fy), f32x4_splat(0.5));
    let lanes = |t: &[f32], b: &[f32]| {
        let t = f32x4(t[0], t[1], t[2], t[3]);
        let b = f32x4(b[0], b[1], b[2], b[3]);
        i32x4_trunc_sat_f32x4(f32x4_floor(f32x4_add(f32x4_add(t, f32x4_mul(f32x4_sub(b, t), vf)), half)))
    };
    out.reserve(n);
    for (t, b) in top[..n16].chunks_exact(16).zip(bot[..n16].chunks_exact(16)) {
        let lo = i16x8_narrow_i32x4(lanes(&t[0..4], &b[0..4]), lanes(&t[4..8], &b[4..8]));
        let hi = i16x8_narrow_i32x4(lanes(&t[8..12], &b[8..12]), lanes(&t[12..16], &b[12..16]));
        let v = u8x16_narrow_i16x8(lo, hi);
        let mut bytes = [0u8; 16];
        // SAFETY: bytes is 16 bytes, the size of a v128.
        unsafe { v128_store(bytes.as_mut_ptr() as *mut v128, v) };
        out.extend_from_slice(&bytes);
    }
    blend_tail(&top[n16..n], &bot[n16..n], fy, out);
}

/// Every byte value of each tensor channel, `(v/255 - mean[c]) / std[c]`,
/// computed once per call with the same expression as per pixel (so the
/// same floats), which saves two divisions per channel and pixel.
fn luts(mean: [f32; 3], std: [f32; 3]) -> [[f32; 256]; 3] {
    let mut lut = [[0f32; 256]; 3];
    for (c, table) in lut.iter_mut().enumerate() {
        for (v, out) in table.iter_mut().enumerate() {
            *out = (v as f32 / 255.0 - mean[c]) / std[c];
        }
    }
    lut
}

/// Source sample positions for one axis: (i0, i1, frac) per output index.
fn axis(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let s = ((d as f64 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (s.floor() as usize).min(src - 1);
            let i1 = (i0 + 1).min(src - 1);
            let f = (s - i0 as f64).max(0.0).min(1.0) as f32;
            (i0, i1, f)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Rgb {
        let mut img = Rgb::new(w, h, 0);
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) * 3;
                img.data[i] = (x * 10) as u8;
                img.data[i + 1] = (y * 10) as u8;
                img.data[i + 2] = 7;
            }
        }
        img
    }

    /// The resize as it was written first, pixel by pixel: the reference
    /// `resize` must equal.
    fn resize_per_pixel(img: &Rgb, w: usize, h: usize) -> Rgb {
        let mut out = Rgb::new(w, h, 0);
        if img.width == 0 || img.height == 0 || w == 0 || h == 0 {
            return out;
        }
        let xs = axis(img.width, w);
        let ys = axis(img.height, h);
        let stride = img.width * 3;
        for (dy, &(y0, y1, fy)) in ys.iter().enumerate() {
            let top_row = &img.data[y0 * stride..][..stride];
            let bot_row = &img.data[y1 * stride..][..stride];
            let out_row = &mut out.data[dy * w * 3..][..w * 3];
            for (o, &(x0, x1, fx)) in out_row.chunks_exact_mut(3).zip(xs.iter()) {
                let (a, b) = (&top_row[x0 * 3..x0 * 3 + 3], &top_row[x1 * 3..x1 * 3 + 3]);
                let (c, d) = (&bot_row[x0 * 3..x0 * 3 + 3], &bot_row[x1 * 3..x1 * 3 + 3]);
                for k in 0..3 {
                    let top = a[k] as f32 + (b[k] as f32 - a[k] as f32) * fx;
                    let bot = c[k] as f32 + (d[k] as f32 - c[k] as f32) * fx;
                    let v = top + (bot - top) * fy;
                    // `as u8` saturates (NaN → 0), which is the clamp to
                    // 0..=255; f32::max/min would be calls in wasm.
                    o[k] = (v + 0.5).floor() as u8;
                }
            }
        }
        out
    }

    #[test]
    fn resize_equals_per_pixel() {
        let mut img = ramp(37, 23);
        // Bytes that are not a ramp, so that rounding is exercised.
        let mut x: u32 = 12345;
        for b in img.data.iter_mut() {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            *b = (x >> 16) as u8;
        }
        for &(w, h) in &[(37, 23), (18, 11), (100, 48), (5, 48), (37, 1), (1, 23), (80, 7), (13, 200)] {
            assert_eq!(img.resize(w, h), resize_per_pixel(&img, w, h), "{}x{}", w, h);
        }
    }

    #[test]
    fn resize_identity_and_halving() {
        let img = ramp(8, 4);
        assert_eq!(img.resize(8, 4), img);
        let half = img.resize(4, 2);
        // Pixel-center alignment: output 0 samples source 0.5.
        assert_eq!(half.px(0, 0), [5, 5, 7]);
        assert_eq!(half.px(3, 1), [65, 25, 7]);
    }

    #[test]
    fn crop_pad_rotate() {
        let img = ramp(5, 3);
        let c = img.crop(1, 1, 4, 9);
        assert_eq!((c.width, c.height), (3, 2));
        assert_eq!(c.px(0, 0), img.px(1, 1));
        let p = c.pad(2, 1, 6, 4, 255);
        assert_eq!(p.px(0, 0), [255, 255, 255]);
        assert_eq!(p.px(2, 1), img.px(1, 1));
        assert_eq!(p.px(5, 3), [255, 255, 255]);
        let r = img.rotate180();
        assert_eq!(r.px(0, 0), img.px(4, 2));
        assert_eq!(r.rotate180(), img);
        let q = img.rotate90ccw();
        assert_eq!((q.width, q.height), (3, 5));
        // The top-right pixel goes to the top-left.
        assert_eq!(q.px(0, 0), img.px(4, 0));
        assert_eq!(q.px(2, 4), img.px(0, 2));
    }

    #[test]
    fn chw_bgr_padded_is_pad_then_chw_bgr() {
        let img = ramp(7, 5);
        let (mean, std) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
        // Margins all round, an exact fit, and canvases that cut the image.
        for &(l, t, w, h) in &[(3, 2, 16, 12), (0, 0, 7, 5), (2, 1, 6, 4), (8, 0, 8, 5), (0, 5, 7, 5), (1, 1, 1, 1)] {
            let mut want = vec![0f32; 3 * w * h];
            img.pad(l, t, w, h, 255).to_chw_bgr(&mut want, w, h, mean, std);
            assert_eq!(img.chw_bgr_padded(l, t, w, h, normalized(255, mean, std), mean, std), want, "{:?}", (l, t, w, h));
            // Zeros around: what to_chw_bgr leaves of a zeroed tensor.
            let mut want = vec![0f32; 3 * w * h];
            if l == 0 && t == 0 {
                img.to_chw_bgr(&mut want, w, h, mean, std);
                assert_eq!(img.chw_bgr_padded(0, 0, w, h, [0.0; 3], mean, std), want, "{:?}", (w, h));
            }
        }
    }

    #[test]
    fn chw_bgr() {
        let mut img = Rgb::new(2, 1, 0);
        img.data = vec![255, 0, 0, 0, 0, 255]; // red, blue
        let mut t = vec![9.0f32; 3 * 3 * 1];
        img.to_chw_bgr(&mut t, 3, 1, [0.5; 3], [0.5; 3]);
        // B plane, G plane, R plane; column 2 untouched.
        assert_eq!(t, vec![-1.0, 1.0, 9.0, -1.0, -1.0, 9.0, 1.0, -1.0, 9.0]);
    }
}
