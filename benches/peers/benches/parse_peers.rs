//! Reply parsing, ours against Stalwart's `smtp-proto` `ResponseReceiver` and lettre's `Response::from_str`,
//! on the same inputs in the same process: a greeting, a 20-line EHLO reply, a 50-line 5xx.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ours::reply::{ReplyConfig, ReplyParser};
use smtp_benches::{GREETING, ehlo20, long_5xx};
use std::hint::black_box;

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply_parse_peers");
    for (name, input) in [
        ("greeting", GREETING.to_vec()),
        ("ehlo_20_lines", ehlo20()),
        ("5xx_50_lines", long_5xx()),
    ] {
        g.throughput(Throughput::Bytes(input.len() as u64));
        let mut parser = ReplyParser::new(ReplyConfig::default());
        g.bench_with_input(BenchmarkId::new("ours", name), &input, |b, input| {
            b.iter(|| {
                let (n, reply) = parser.push(black_box(input)).unwrap();
                black_box((n, reply.unwrap()))
            })
        });
        let text = String::from_utf8(input.clone()).unwrap();
        g.bench_with_input(BenchmarkId::new("lettre", name), &text, |b, text| {
            b.iter(|| {
                black_box(
                    black_box(text)
                        .parse::<lettre::transport::smtp::response::Response>()
                        .unwrap(),
                )
            })
        });
        g.bench_with_input(BenchmarkId::new("stalwart", name), &input, |b, input| {
            b.iter(|| {
                let mut receiver = stalwart::response::parser::ResponseReceiver::default();
                black_box(receiver.parse(&mut black_box(input).iter()).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
