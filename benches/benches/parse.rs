//! Reply parsing (framer + nom over complete lines, one allocation per reply) on a greeting, a 20-line EHLO
//! reply and a 50-line 5xx. The side-by-side run against Stalwart's parser is `benches/peers` (a package of
//! its own: that crate's name collides with our core's, which would make `-p smtp-proto` ambiguous here).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use smtp_benches::{GREETING, ehlo20, long_5xx};
use smtp_proto::reply::{ReplyConfig, ReplyParser};
use std::hint::black_box;

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply_parse");
    for (name, input) in
        [("greeting", GREETING.to_vec()), ("ehlo_20_lines", ehlo20()), ("5xx_50_lines", long_5xx())]
    {
        g.throughput(Throughput::Bytes(input.len() as u64));
        let mut parser = ReplyParser::new(ReplyConfig::default());
        g.bench_with_input(BenchmarkId::new("ours", name), &input, |b, input| {
            b.iter(|| {
                let (n, reply) = parser.push(black_box(input)).unwrap();
                black_box((n, reply.unwrap()))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
