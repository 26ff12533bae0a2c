//! DB (differentiable binarization) post-processing of the detection
//! model's probability map, and reading order.

/// An axis-aligned box; coordinates are pixel edges: it covers
/// [x0, x1) × [y0, y1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxF {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl BoxF {
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }
    pub fn cy(&self) -> f32 {
        (self.y0 + self.y1) / 2.0
    }
}

/// A detected text region in probability-map coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Region {
    pub bbox: BoxF,
    /// Mean probability over the region's pixels.
    pub score: f32,
}

pub struct DbParams {
    /// Pixels with probability above this are text.
    pub thresh: f32,
    /// Regions whose mean probability is below this are dropped.
    pub box_thresh: f32,
    /// PaddleOCR's unclip ratio: grow by area × ratio / perimeter.
    pub unclip_ratio: f32,
    /// Regions whose shorter side is below this (before unclipping) are dropped.
    pub min_size: f32,
    /// At most this many regions are considered (largest first).
    pub max_candidates: usize,
}

/// Finds text regions in a `w`×`h` probability map: threshold, 4-connected
/// components (iterative flood fill), box score, size filter, unclip.
/// Returned in raster order of each region's first pixel (deterministic).
pub fn regions(prob: &[f32], w: usize, h: usize, p: &DbParams) -> Vec<Region> {
    let n = w * h;
    assert!(prob.len() >= n);
    // 0 = background, 1 = text not yet labelled, 2 = labelled.
    let mut state: Vec<u8> = prob[..n].iter().map(|&v| u8::from(v > p.thresh)).collect();
    // Pixels to visit, with their coordinates (no division per pixel).
    let mut stack: Vec<(usize, usize, usize)> = Vec::new();
    let mut found: Vec<(usize, Region)> = Vec::new();
    let mut start = 0;
    while let Some(k) = next_unlabelled(&state, start) {
        start = k + 1;
        state[k] = 2;
        stack.push((k, k % w, k / w));
        let (mut minx, mut miny, mut maxx, mut maxy) = (w, h, 0usize, 0usize);
        let mut sum = 0f64;
        let mut count = 0usize;
        while let Some((i, x, y)) = stack.pop() {
            minx = minx.min(x);
            maxx = maxx.max(x);
            miny = miny.min(y);
            maxy = maxy.max(y);
            sum += prob[i] as f64;
            count += 1;
            if x > 0 && state[i - 1] == 1 {
                state[i - 1] = 2;
                stack.push((i - 1, x - 1, y));
            }
            if x + 1 < w && state[i + 1] == 1 {
                state[i + 1] = 2;
                stack.push((i + 1, x + 1, y));
            }
            if y > 0 && state[i - w] == 1 {
                state[i - w] = 2;
                stack.push((i - w, x, y - 1));
            }
            if y + 1 < h && state[i + w] == 1 {
                state[i + w] = 2;
                stack.push((i + w, x, y + 1));
            }
        }
        // As PaddleOCR's contour boxes, sides run between pixel centers.
        let bw = (maxx - minx) as f32;
        let bh = (maxy - miny) as f32;
        if bw.min(bh) < p.min_size {
            continue;
        }
        let score = (sum / count as f64) as f32;
        if score < p.box_thresh {
            continue;
        }
        let d = unclip_distance(bw, bh, p.unclip_ratio);
        // Centers ± d, then to pixel edges (+0.5 on each side).
        let bbox = BoxF {
            x0: minx as f32 - d,
            y0: miny as f32 - d,
            x1: maxx as f32 + 1.0 + d,
            y1: maxy as f32 + 1.0 + d,
        };
        if bbox.width().min(bbox.height()) < p.min_size + 2.0 {
            continue;
        }
        found.push((count, Region { bbox, score }));
    }
    if found.len() > p.max_candidates {
        // Keep the largest; stable, so ties keep raster order.
        let mut idx: Vec<usize> = (0..found.len()).collect();
        idx.sort_by(|&a, &b| found[b].0.cmp(&found[a].0).then(a.cmp(&b)));
        idx.truncate(p.max_candidates);
        idx.sort_unstable();
        return idx.into_iter().map(|i| found[i].1).collect();
    }
    found.into_iter().map(|(_, r)| r).collect()
}

/// The index of the first pixel from `from` on that is text not yet
/// labelled (state 1).
#[cfg(not(target_arch = "wasm32"))]
fn next_unlabelled(state: &[u8], from: usize) -> Option<usize> {
    state[from..].iter().position(|&s| s == 1).map(|k| from + k)
}

/// next_unlabelled sixteen states at a time: most of a page is background,
/// skipped a vector at a time.
#[cfg(target_arch = "wasm32")]
fn next_unlabelled(state: &[u8], from: usize) -> Option<usize> {
    use core::arch::wasm32::*;
    let one = u8x16_splat(1);
    let mut i = from;
    while i + 16 <= state.len() {
        // SAFETY: i + 16 <= len, so the 16 bytes are inside state.
        let v = unsafe { v128_load(state.as_ptr().add(i) as *const v128) };
        let m = u8x16_bitmask(u8x16_eq(v, one));
        if m != 0 {
            return Some(i + m.trailing_zeros() as usize);
        }
        i += 16;
    }
    state[i..].iter().position(|&s| s == 1).map(|k| i + k)
}

/// PaddleOCR's unclip offset for a `w`×`h` rectangle: area × ratio / perimeter.
pub fn unclip_distance(w: f32, h: f32, ratio: f32) -> f32 {
    let perimeter = 2.0 * (w + h);
    if perimeter <= 0.0 {
        return 0.0;
    }
    w * h * ratio / perimeter
}

/// Merges boxes of the same line that overlap or touch horizontally (the
/// detector sometimes splits a line at a word gap; recognizing overlapping
/// crops separately would read the shared characters twice). Two boxes are
/// on the same line when their vertical centers differ by less than half
/// the smaller height. The result keeps the input's order of first members.
pub fn merge_lines(boxes: Vec<BoxF>) -> Vec<BoxF> {
    let mut boxes = boxes;
    loop {
        let mut merged = false;
        let mut i = 0;
        while i < boxes.len() {
            let mut j = i + 1;
            while j < boxes.len() {
                let (a, b) = (boxes[i], boxes[j]);
                let same_line = (a.cy() - b.cy()).abs() < a.height().min(b.height()) / 2.0;
                let gap = a.x0.max(b.x0) - a.x1.min(b.x1);
                if same_line && gap <= 0.0 {
                    boxes[i] = BoxF {
                        x0: a.x0.min(b.x0),
                        y0: a.y0.min(b.y0),
                        x1: a.x1.max(b.x1),
                        y1: a.y1.max(b.y1),
                    };
                    boxes.remove(j);
                    merged = true;
                } else {
                    j += 1;
                }
            }
            i += 1;
        }
        if !merged {
            return boxes;
        }
    }
}

/// Sorts boxes into reading order: lines top to bottom, boxes left to right
/// within a line. A box belongs to the current line when its vertical center
/// is within half a line height (the line's first box) of the line's center.
/// Returns indices into `boxes`.
pub fn reading_order(boxes: &[BoxF]) -> Vec<usize> {
    let mut by_y: Vec<usize> = (0..boxes.len()).collect();
    by_y.sort_by(|&a, &b| {
        let (ba, bb) = (&boxes[a], &boxes[b]);
        ba.cy()
            .partial_cmp(&bb.cy())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(ba.x0.partial_cmp(&bb.x0).unwrap_or(std::cmp::Ordering::Equal))
            .then(a.cmp(&b))
    });
    let mut order = Vec::with_capacity(boxes.len());
    let mut line: Vec<usize> = Vec::new();
    let mut line_cy = 0f32;
    let mut line_h = 0f32;
    for i in by_y {
        let b = &boxes[i];
        if !line.is_empty() && (b.cy() - line_cy).abs() >= line_h / 2.0 {
            flush_line(&mut line, boxes, &mut order);
        }
        if line.is_empty() {
            line_cy = b.cy();
            line_h = b.height();
        }
        line.push(i);
    }
    flush_line(&mut line, boxes, &mut order);
    order
}

fn flush_line(line: &mut Vec<usize>, boxes: &[BoxF], order: &mut Vec<usize>) {
    line.sort_by(|&a, &b| {
        boxes[a]
            .x0
            .partial_cmp(&boxes[b].x0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    order.append(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DbParams {
        DbParams {
            thresh: 0.3,
            box_thresh: 0.6,
            unclip_ratio: 1.5,
            min_size: 3.0,
            max_candidates: 1000,
        }
    }

    fn paint(map: &mut [f32], w: usize, x0: usize, y0: usize, x1: usize, y1: usize, v: f32) {
        for y in y0..y1 {
            for x in x0..x1 {
                map[y * w + x] = v;
            }
        }
    }

    #[test]
    fn finds_and_filters_regions() {
        let (w, h) = (64, 32);
        let mut map = vec![0.0f32; w * h];
        paint(&mut map, w, 4, 4, 44, 10, 0.9); // a line: 40×6 pixels
        paint(&mut map, w, 50, 4, 52, 20, 0.9); // too thin: 2 wide
        paint(&mut map, w, 4, 20, 30, 28, 0.4); // too faint: score 0.4
        let r = regions(&map, w, h, &params());
        assert_eq!(r.len(), 1);
        assert!((r[0].score - 0.9).abs() < 1e-6);
        // Center-to-center 39×5, d = 39·5·1.5 / 88.
        let d = unclip_distance(39.0, 5.0, 1.5);
        assert!((d - 3.3238637).abs() < 1e-4);
        assert_eq!(r[0].bbox, BoxF { x0: 4.0 - d, y0: 4.0 - d, x1: 44.0 + d, y1: 10.0 + d });
    }

    #[test]
    fn separate_components_and_no_recursion_limit() {
        // A big region (flood fill must not recurse) and a second one.
        let (w, h) = (1000, 400);
        let mut map = vec![0.0f32; w * h];
        paint(&mut map, w, 0, 0, 1000, 300, 0.8);
        paint(&mut map, w, 10, 350, 200, 380, 0.7);
        let r = regions(&map, w, h, &params());
        assert_eq!(r.len(), 2);
        assert!(r[0].bbox.y0 < r[1].bbox.y0);
    }

    #[test]
    fn reading_order_lines_then_left_to_right() {
        let b = |x0: f32, y0: f32, x1: f32, y1: f32| BoxF { x0, y0, x1, y1 };
        let boxes = vec![
            b(300.0, 102.0, 400.0, 142.0), // line 2, right
            b(10.0, 10.0, 230.0, 50.0),    // line 1, left
            b(10.0, 100.0, 250.0, 140.0),  // line 2, left
            b(220.0, 14.0, 400.0, 52.0),   // line 1, right (slightly lower)
            b(10.0, 200.0, 100.0, 240.0),  // line 3
        ];
        assert_eq!(reading_order(&boxes), vec![1, 3, 2, 0, 4]);
        // Line 1's boxes overlap (merged); line 2's have a gap (kept apart).
        let m = merge_lines(boxes);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1], b(10.0, 10.0, 400.0, 52.0));
        assert_eq!(m[0], b(300.0, 102.0, 400.0, 142.0));
        assert!(reading_order(&[]).is_empty());
    }
}
