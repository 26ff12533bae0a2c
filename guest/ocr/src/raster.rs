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
    pub fn resize(&self, w: usize, h: usize) -> Rgb {
        let mut out = Rgb::new(w, h, 0);
        if self.width == 0 || self.height == 0 || w == 0 || h == 0 {
            return out;
        }
        let xs = axis(self.width, w);
        let ys = axis(self.height, h);
        let stride = self.width * 3;
        for (dy, &(y0, y1, fy)) in ys.iter().enumerate() {
            let top_row = &self.data[y0 * stride..][..stride];
            let bot_row = &self.data[y1 * stride..][..stride];
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

    /// The pixels in [x0, x1) × [y0, y1), clamped to the image.
    pub fn crop(&self, x0: usize, y0: usize, x1: usize, y1: usize) -> Rgb {
        let x1 = x1.min(self.width);
        let y1 = y1.min(self.height);
        let x0 = x0.min(x1);
        let y0 = y0.min(y1);
        let w = x1 - x0;
        let mut out = Rgb::new(w, y1 - y0, 0);
        for y in y0..y1 {
            let src = (y * self.width + x0) * 3;
            let dst = (y - y0) * w * 3;
            out.data[dst..dst + w * 3].copy_from_slice(&self.data[src..src + w * 3]);
        }
        out
    }

    /// This image placed at (left, top) on a `w`×`h` canvas of `fill`.
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
    pub fn to_chw_bgr(&self, dst: &mut [f32], dst_w: usize, dst_h: usize, mean: [f32; 3], std: [f32; 3]) {
        // Every byte value of each tensor channel, computed once per call
        // with the same expression as per pixel (so the same floats), which
        // saves two divisions per channel and pixel.
        let mut lut = [[0f32; 256]; 3];
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, out) in table.iter_mut().enumerate() {
                *out = (v as f32 / 255.0 - mean[c]) / std[c];
            }
        }
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
    fn chw_bgr() {
        let mut img = Rgb::new(2, 1, 0);
        img.data = vec![255, 0, 0, 0, 0, 255]; // red, blue
        let mut t = vec![9.0f32; 3 * 3 * 1];
        img.to_chw_bgr(&mut t, 3, 1, [0.5; 3], [0.5; 3]);
        // B plane, G plane, R plane; column 2 untouched.
        assert_eq!(t, vec![-1.0, 1.0, 9.0, -1.0, -1.0, 9.0, 1.0, -1.0, 9.0]);
    }
}
