//! `ocr`: text recognition in an image (Guest ABI v1), with PaddleOCR's
//! PP-OCRv4 models through WASI-NN.
//!
//! stdin: a PNG or JPEG image (at most 16 megapixels; anything else → exit 2).
//! Transparent pixels are composited over white.
//!
//! Models, registered in the worker by name: `ocr-det` (text detection),
//! `ocr-cls` (0°/180° direction), `ocr-rec` (recognition, CTC) and
//! `ocr-keys` (the recognizer's character dictionary).
//!
//! Pipeline:
//! 1. Detection: the image is downscaled so its longer side is at most
//!    `max_side` (default 960), given a 16 px white margin and padded with
//!    white to multiples of 32 (never stretched), normalized as PaddleOCR does
//!    (BGR, ImageNet mean/std) and run through `ocr-det`.
//! 2. DB post-processing: probability map > 0.3, 4-connected regions, box =
//!    the region's bounding box, score = mean probability in the region
//!    (dropped below `box_thresh`, default 0.6, or shorter side < 3 px), grown
//!    by PaddleOCR's unclip distance (area × `unclip_ratio` / perimeter,
//!    default ratio 1.5); boxes of one line that overlap are merged; then by `pad` × the box height on every side
//!    (default 0.25: tight crops lose spaces), mapped back to the original
//!    image and clamped to it.
//! 3. Reading order: by vertical center; boxes whose centers differ by less
//!    than half the line's height are one line, sorted left to right.
//! 4. Each box is cropped from the original image (a crop 1.5× taller than
//!    wide is turned 90° counter-clockwise), checked by `ocr-cls` (48×192;
//!    when class 180° has probability > 0.9 the crop is also recognized
//!    turned 180° and the more confident reading wins; param `cls=false`
//!    skips the check), resized to height 48 keeping its aspect ratio (width
//!    ceil(48·w/h), at most 1600), normalized ((v/255 − 0.5)/0.5, BGR),
//!    right-padded with zeros to a multiple of 8 and at least 320 wide
//!    (PaddleOCR's recognition shape), run through `ocr-rec` and decoded
//!    greedily (CTC: argmax, repeats collapsed, blanks dropped).
//!    Confidence = mean probability of the kept characters. Lines with no
//!    text (after trimming spaces) or a confidence below `min_confidence`
//!    (default 0.5, as PaddleOCR's drop score) are left out.
//!
//! stdout (no trailing newline), keys in this order:
//! `{"width":W,"height":H,"lines":[{"text":"...","confidence":0.9731,"box":[x0,y0,x1,y1]},...]}`
//! with lines in reading order; `box` is in original image pixels, x1 and y1
//! exclusive; confidence has 4 decimals. The same image and params always
//! give the same bytes.

mod ctc;
mod det;
mod raster;

use std::io::{self, Write};

use det::{BoxF, DbParams};
use raster::Rgb;
use wasmedge_wasi_nn::{ExecutionTarget, GraphBuilder, GraphEncoding, GraphExecutionContext, TensorType};
use wasmjobs_guest::{param, fail, read_input};

// The models this guest loads, checked by `wasmjobs guest push`.
wasmjobs_guest::models!("ocr-det", "ocr-cls", "ocr-rec", "ocr-keys");

const MAX_PIXELS: u64 = 16 * 1024 * 1024;
const DET_MARGIN: usize = 16;
const REC_HEIGHT: usize = 48;
const CLS_WIDTH: usize = 192;
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

struct Params {
    max_side: usize,
    box_thresh: f32,
    unclip_ratio: f32,
    pad: f32,
    min_confidence: f32,
    cls: bool,
    rec_min_width: usize,
    rec_max_width: usize,
}

fn num_param<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(key: &str, default: T, lo: T, hi: T) -> T {
    match param(key) {
        None => default,
        Some(s) => match s.trim().parse::<T>() {
            Ok(v) if v >= lo && v <= hi => v,
            _ => fail(2, &format!("ocr: invalid {} {:?}: want a number from {} to {}\n", key, s, lo, hi)),
        },
    }
}

fn params() -> Params {
    let cls = match param("cls").as_deref() {
        None | Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        Some(other) => fail(2, &format!("ocr: invalid cls {:?}: want true or false\n", other)),
    };
    Params {
        max_side: num_param("max_side", 960usize, 64, 4096),
        box_thresh: num_param("box_thresh", 0.6f32, 0.0, 1.0),
        unclip_ratio: num_param("unclip_ratio", 1.5f32, 0.0, 4.0),
        pad: num_param("pad", 0.25f32, 0.0, 2.0),
        min_confidence: num_param("min_confidence", 0.5f32, 0.0, 1.0),
        cls,
        rec_min_width: num_param("rec_min_width", 320usize, 8, 1600),
        rec_max_width: num_param("rec_max_width", 1600usize, 48, 4096),
    }
}

/// Decodes a PNG or JPEG into RGB, compositing transparency over white.
fn decode(bytes: &[u8]) -> Result<Rgb, String> {
    let reader = image::io::Reader::new(io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    match reader.format() {
        Some(image::ImageFormat::Png) | Some(image::ImageFormat::Jpeg) => {}
        _ => return Err("not a PNG or JPEG image".to_string()),
    }
    let (w, h) = reader.into_dimensions().map_err(|e| e.to_string())?;
    if w == 0 || h == 0 {
        return Err("the image is empty".to_string());
    }
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(format!("{}x{} is more than {} pixels", w, h, MAX_PIXELS));
    }
    let img = image::load_from_memory(bytes).map_err(|e| e.to_string())?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if img.color().has_alpha() {
        let rgba = img.into_rgba8().into_raw();
        let mut out = Rgb::new(w, h, 0);
        for (i, px) in rgba.chunks_exact(4).enumerate() {
            let a = px[3] as u32;
            for k in 0..3 {
                out.data[i * 3 + k] = ((px[k] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
            }
        }
        Ok(out)
    } else {
        Ok(Rgb {
            width: w,
            height: h,
            data: img.into_rgb8().into_raw(),
        })
    }
}

type NnResult<T> = Result<T, String>;

/// A model loaded by name with one execution context, and the buffer its
/// outputs are read into (kept from call to call: recognition runs once per
/// line, and a fresh buffer would be zeroed every time).
struct Model {
    name: &'static str,
    ctx: GraphExecutionContext,
    out: Vec<f32>,
}

impl Model {
    fn load(name: &'static str) -> NnResult<Model> {
        let graph = GraphBuilder::new(GraphEncoding::Onnx, ExecutionTarget::AUTO)
            .build_from_cache(name)
            .map_err(|e| format!("model {:?}: load: {}", name, e))?;
        let ctx = graph
            .init_execution_context()
            .map_err(|e| format!("model {:?}: init_execution_context: {}", name, e))?;
        Ok(Model { name, ctx, out: Vec::new() })
    }

    /// Runs the model on one f32 input; returns output 0, for which at
    /// least `want` floats are reserved (four times as many on a second try).
    fn run(&mut self, dims: &[usize], input: &[f32], want: usize) -> NnResult<&[f32]> {
        let name = self.name;
        let err = |what: &str, e: wasmedge_wasi_nn::Error| format!("model {:?}: {}: {}", name, what, e);
        self.ctx.set_input(0, TensorType::F32, dims, input).map_err(|e| err("set_input", e))?;
        self.ctx.compute().map_err(|e| err("compute", e))?;
        if self.out.len() < want {
            self.out.resize(want, 0.0);
        }
        let n = match self.ctx.get_output(0, &mut self.out) {
            Err(wasmedge_wasi_nn::Error::BackendError(wasmedge_wasi_nn::BackendError::TooLarge)) => {
                self.out.resize(self.out.len().max(want * 4), 0.0);
                self.ctx.get_output(0, &mut self.out)
            }
            r => r,
        }
        .map_err(|e| err("get_output", e))?;
        Ok(&self.out[..n / 4])
    }
}

fn round_up(v: usize, m: usize) -> usize {
    (v + m - 1) / m * m
}

/// Text boxes in original image coordinates, in reading order.
fn detect(img: &Rgb, p: &Params, det: &mut Model) -> NnResult<Vec<BoxF>> {
    let longer = img.width.max(img.height);
    let (dw, dh) = if longer > p.max_side {
        let s = p.max_side as f64 / longer as f64;
        (
            ((img.width as f64 * s).round() as usize).max(1),
            ((img.height as f64 * s).round() as usize).max(1),
        )
    } else {
        (img.width, img.height)
    };
    let scaled = if (dw, dh) == (img.width, img.height) { None } else { Some(img.resize(dw, dh)) };
    let src = scaled.as_ref().unwrap_or(img);
    let pw = round_up(dw + 2 * DET_MARGIN, 32);
    let ph = round_up(dh + 2 * DET_MARGIN, 32);
    let white = raster::normalized(255, IMAGENET_MEAN, IMAGENET_STD);
    let input = src.chw_bgr_padded(DET_MARGIN, DET_MARGIN, pw, ph, white, IMAGENET_MEAN, IMAGENET_STD);
    drop(scaled);
    let prob = det.run(&[1, 3, ph, pw], &input, pw * ph)?;
    drop(input);
    if prob.len() != pw * ph {
        return Err(format!(
            "model \"ocr-det\": output has {} values, want {} ({}x{})",
            prob.len(),
            pw * ph,
            pw,
            ph
        ));
    }
    let db = DbParams {
        thresh: 0.3,
        box_thresh: p.box_thresh,
        unclip_ratio: p.unclip_ratio,
        min_size: 3.0,
        max_candidates: 1000,
    };
    let sx = img.width as f32 / dw as f32;
    let sy = img.height as f32 / dh as f32;
    let (iw, ih) = (img.width as f32, img.height as f32);
    let found: Vec<BoxF> = det::regions(prob, pw, ph, &db).into_iter().map(|r| r.bbox).collect();
    let mut boxes = Vec::new();
    for b in det::merge_lines(found) {
        let m = DET_MARGIN as f32;
        let mut o = BoxF {
            x0: (b.x0 - m) * sx,
            y0: (b.y0 - m) * sy,
            x1: (b.x1 - m) * sx,
            y1: (b.y1 - m) * sy,
        };
        let g = p.pad * o.height();
        o = BoxF {
            x0: (o.x0 - g).floor().max(0.0),
            y0: (o.y0 - g).floor().max(0.0),
            x1: (o.x1 + g).ceil().min(iw),
            y1: (o.y1 + g).ceil().min(ih),
        };
        if o.width() >= 1.0 && o.height() >= 1.0 {
            boxes.push(o);
        }
    }
    let order = det::reading_order(&boxes);
    Ok(order.into_iter().map(|i| boxes[i]).collect())
}

/// Width of a crop resized to `height` with its aspect ratio kept.
fn scaled_width(crop: &Rgb, height: usize) -> usize {
    ((height as f64 * crop.width as f64 / crop.height as f64).ceil() as usize).max(1)
}

/// True if the direction classifier says the crop is upside down.
fn upside_down(crop: &Rgb, cls: &mut Model) -> NnResult<bool> {
    let w = scaled_width(crop, REC_HEIGHT).min(CLS_WIDTH);
    let resized = crop.resize(w, REC_HEIGHT);
    let input = resized.chw_bgr_padded(0, 0, CLS_WIDTH, REC_HEIGHT, [0.0; 3], [0.5; 3], [0.5; 3]);
    let out = cls.run(&[1, 3, REC_HEIGHT, CLS_WIDTH], &input, 2)?;
    if out.len() != 2 {
        return Err(format!("model \"ocr-cls\": output has {} values, want 2", out.len()));
    }
    Ok(out[1] > out[0] && out[1] > 0.9)
}

/// Recognizes the text of one crop: (text, confidence).
fn recognize(crop: &Rgb, p: &Params, rec: &mut Model, charset: &ctc::Charset) -> NnResult<(String, f32)> {
    let w = scaled_width(crop, REC_HEIGHT).min(p.rec_max_width);
    let tw = round_up(w, 8).max(round_up(p.rec_min_width, 8));
    let resized = crop.resize(w, REC_HEIGHT);
    let input = resized.chw_bgr_padded(0, 0, tw, REC_HEIGHT, [0.0; 3], [0.5; 3], [0.5; 3]);
    drop(resized);
    let c = charset.classes();
    // PP-OCRv4 gives tw/8 timesteps; Model::run retries a model with more.
    let out = rec.run(&[1, 3, REC_HEIGHT, tw], &input, (tw / 8 + 1) * c)?;
    if out.is_empty() || out.len() % c != 0 {
        return Err(format!(
            "model \"ocr-rec\": output has {} values, not a multiple of the {} classes of ocr-keys",
            out.len(),
            c
        ));
    }
    Ok(ctc::decode(out, out.len() / c, c, charset))
}

/// Loads the character dictionary's text from the `ocr-keys` graph's output 0.
fn load_charset() -> NnResult<String> {
    let err = |what: &str, e: wasmedge_wasi_nn::Error| format!("model \"ocr-keys\": {}: {}", what, e);
    let graph = GraphBuilder::new(GraphEncoding::Autodetec, ExecutionTarget::AUTO)
        .build_from_cache("ocr-keys")
        .map_err(|e| err("load", e))?;
    let mut ctx = graph.init_execution_context().map_err(|e| err("init_execution_context", e))?;
    ctx.compute().map_err(|e| err("compute", e))?;
    // PaddleOCR's dictionary is about 26 KB; a larger one gets a second try.
    let mut buf = vec![0u8; 64 << 10];
    let n = match ctx.get_output(0, &mut buf) {
        Ok(n) => n,
        Err(wasmedge_wasi_nn::Error::BackendError(wasmedge_wasi_nn::BackendError::TooLarge)) => {
            buf = vec![0u8; 16 << 20];
            ctx.get_output(0, &mut buf).map_err(|e| err("get_output", e))?
        }
        Err(e) => return Err(err("get_output", e)),
    };
    buf.truncate(n);
    String::from_utf8(buf).map_err(|_| "model \"ocr-keys\": the dictionary is not UTF-8".to_string())
}

struct Line {
    text: String,
    confidence: f32,
    bbox: BoxF,
}

fn ocr(img: &Rgb, p: &Params) -> NnResult<Vec<Line>> {
    let mut det = Model::load("ocr-det")?;
    let boxes = detect(img, p, &mut det)?;
    drop(det);
    if boxes.is_empty() {
        return Ok(Vec::new());
    }
    let mut cls = if p.cls { Some(Model::load("ocr-cls")?) } else { None };
    let mut rec = Model::load("ocr-rec")?;
    let keys = load_charset()?;
    let charset = ctc::Charset::parse(&keys);
    let mut lines = Vec::new();
    for b in boxes {
        let mut crop = img.crop(b.x0 as usize, b.y0 as usize, b.x1 as usize, b.y1 as usize);
        if crop.width == 0 || crop.height == 0 {
            continue;
        }
        if crop.height as f32 >= 1.5 * crop.width as f32 {
            crop = crop.rotate90ccw();
        }
        let mut best = recognize(&crop, p, &mut rec, &charset)?;
        if let Some(cls) = cls.as_mut() {
            // The classifier errs on short text, so a turn it suggests is
            // kept only if recognition is more confident that way round.
            if upside_down(&crop, cls)? {
                let turned = recognize(&crop.rotate180(), p, &mut rec, &charset)?;
                if turned.1 > best.1 {
                    best = turned;
                }
            }
        }
        let (text, confidence) = best;
        let text = text.trim().to_string();
        if text.is_empty() || confidence < p.min_confidence {
            continue;
        }
        lines.push(Line { text, confidence, bbox: b });
    }
    Ok(lines)
}

fn render(width: usize, height: usize, lines: &[Line]) -> String {
    let mut out = format!("{{\"width\":{},\"height\":{},\"lines\":[", width, height);
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let text = serde_json::to_string(&l.text).expect("string serialization cannot fail");
        out.push_str(&format!(
            "{{\"text\":{},\"confidence\":{:.4},\"box\":[{},{},{},{}]}}",
            text, l.confidence, l.bbox.x0 as u32, l.bbox.y0 as u32, l.bbox.x1 as u32, l.bbox.y1 as u32
        ));
    }
    out.push_str("]}");
    out
}

fn main() {
    let p = params();
    let input = match read_input() {
        Ok(b) => b,
        Err(e) => fail(1, &format!("ocr: reading input: {}\n", e)),
    };
    let img = match decode(&input) {
        Ok(img) => img,
        Err(e) => fail(2, &format!("ocr: invalid image ({} bytes): {}\n", input.len(), e)),
    };
    drop(input);
    let lines = match ocr(&img, &p) {
        Ok(lines) => lines,
        Err(e) => fail(1, &format!("ocr: {}\n", e)),
    };
    let out = render(img.width, img.height, &lines);
    let stdout = io::stdout();
    let mut w = stdout.lock();
    if let Err(e) = w.write_all(out.as_bytes()).and_then(|_| w.flush()) {
        fail(1, &format!("ocr: writing output: {}\n", e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rejects_garbage() {
        assert!(decode(b"").is_err());
        assert!(decode(b"hello, world").is_err());
        assert!(decode(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRtruncated").is_err());
    }

    #[test]
    fn decode_png_with_alpha() {
        let mut png = Vec::new();
        let img = image::RgbaImage::from_raw(2, 1, vec![0, 0, 0, 255, 0, 0, 0, 0]).unwrap();
        image::DynamicImage::ImageRgba8(img)
            .write_to(&mut io::Cursor::new(&mut png), image::ImageOutputFormat::Png)
            .unwrap();
        let rgb = decode(&png).unwrap();
        assert_eq!((rgb.width, rgb.height), (2, 1));
        assert_eq!(rgb.data, vec![0, 0, 0, 255, 255, 255]);
    }

    #[test]
    fn renders_json() {
        let lines = vec![Line {
            text: "Hi \"there\"".to_string(),
            confidence: 0.97126,
            bbox: BoxF { x0: 1.0, y0: 2.0, x1: 30.0, y1: 14.0 },
        }];
        assert_eq!(
            render(40, 20, &lines),
            r#"{"width":40,"height":20,"lines":[{"text":"Hi \"there\"","confidence":0.9713,"box":[1,2,30,14]}]}"#
        );
        assert_eq!(render(1, 1, &[]), r#"{"width":1,"height":1,"lines":[]}"#);
    }
}
