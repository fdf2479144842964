//! DATA encoding (CRLF normalisation + dot-stuffing) and BDAT text normalisation in 64 KiB chunks, against a
//! plain copy of the same bytes in the same run: on a plain 10 MiB body (CRLF), the same with bare LF line
//! ends, and a dot- and bare-LF-dense one.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use smtp_benches::{dense_body, lf_body, plain_body};
use smtp_proto::body::{CrlfNormalizer, DotStuffer};
use std::hint::black_box;

const LEN: usize = 10 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

fn body(c: &mut Criterion) {
    let mut g = c.benchmark_group("data_encoding");
    g.sample_size(20);
    for (name, input) in
        [("plain_10MiB", plain_body(LEN)), ("lf_10MiB", lf_body(LEN)), ("dense_10MiB", dense_body(LEN))]
    {
        g.throughput(Throughput::Bytes(input.len() as u64));
        let mut out = Vec::with_capacity(2 * CHUNK + 16);
        g.bench_with_input(BenchmarkId::new("memcpy", name), &input, |b, input| {
            b.iter(|| {
                for chunk in black_box(input).chunks(CHUNK) {
                    out.clear();
                    out.extend_from_slice(chunk);
                    black_box(&out);
                }
            })
        });
        g.bench_with_input(BenchmarkId::new("dot_stuffer", name), &input, |b, input| {
            b.iter(|| {
                let mut s = DotStuffer::new();
                for chunk in black_box(input).chunks(CHUNK) {
                    out.clear();
                    s.encode(chunk, &mut out);
                    black_box(&out);
                }
                out.clear();
                s.finish(&mut out);
            })
        });
        g.bench_with_input(BenchmarkId::new("crlf_normalizer", name), &input, |b, input| {
            b.iter(|| {
                let mut n = CrlfNormalizer::new();
                for chunk in black_box(input).chunks(CHUNK) {
                    out.clear();
                    n.encode(chunk, &mut out);
                    black_box(&out);
                }
                out.clear();
                n.finish(&mut out);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, body);
criterion_main!(benches);
