import ArgumentParser
import BGKernels
import CKernels

/// One benchmark: a kernel call on fixed shapes, its operation count, and a
/// description precise enough for another framework to run the same thing.
struct BenchCase {
  enum Kernel: String, CaseIterable, ExpressibleByArgument {
    case gemm, conv, attention
  }

  /// The network whose layers the case comes from.
  enum Group: String, CaseIterable, ExpressibleByArgument {
    case biggan, inception
  }

  var id: String
  var kernel: Kernel
  var group: Group = .biggan
  var precision: Precision
  /// Shape fields, written into the JSON report for side-by-side runs.
  var spec: [String: Int]
  var pass: String
  var flops: Double
  /// Allocates the operands once and returns the timed call.
  var prepare: () -> () -> Void
}

/// Deterministic operands in [-1, 1), freed when the timed call that
/// captures the arena is released.
final class OperandArena {
  private var pointers: [UnsafeMutablePointer<Float>] = []
  private var seed: UInt64 = 0x9E37_79B9_7F4A_7C15

  func make(_ count: Int) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    for i in 0..<count {
      seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
      p[i] = Float(seed >> 40) / Float(1 << 23) - 1
    }
    pointers.append(p)
    return p
  }

  /// Wraps `call` so that it keeps this arena alive.
  func keeping(_ call: @escaping () -> Void) -> () -> Void {
    { withExtendedLifetime(self) { call() } }
  }

  deinit { pointers.forEach { $0.deallocate() } }
}

enum BenchSuite {
  /// GEMMs: squares, then the im2col GEMMs BigGAN runs (M = pixels x batch,
  /// N = output channels, K = 9 x input channels) and its linear layers.
  static let gemmShapes: [(name: String, m: Int, n: Int, k: Int, transB: Bool)] = [
    ("square256", 256, 256, 256, false),
    ("square512", 512, 512, 512, false),
    ("square1024", 1024, 1024, 1024, false),
    ("square2048", 2048, 2048, 2048, false),
    ("g128_conv8x8", 512, 1536, 13824, true),
    ("g128_conv64x64", 32768, 192, 3456, true),
    ("g128_skip64x64", 32768, 192, 384, true),
    ("cifar_conv32x32", 16384, 256, 2304, true),
    ("g128_linear", 8, 24576, 20, true),
  ]

  /// Convolutions at the BigGAN-32 (ch 64, batch 16 and 50; the `tiny`
  /// training preset's ch 16 with D's batch of 64 and G's of 32), BigGAN-128
  /// (ch 96, batch 8) and BigGAN-deep-128 (ch 128, batch 1) layer shapes:
  /// (batch, in H/W, Cin, Cout, kernel, upsample). Names give the output
  /// size.
  static let convShapes: [(name: String, batch: Int, hw: Int, cin: Int, cout: Int, kernel: Int, up: Bool)] = [
    ("cifar_g_up3x3_16", 16, 8, 256, 256, 3, true),
    ("cifar_g_3x3_32", 16, 32, 256, 256, 3, false),
    ("cifar_g_skip1x1_32", 16, 16, 256, 256, 1, true),
    ("cifar50_up3x3_8", 50, 4, 256, 256, 3, true),
    ("cifar50_3x3_8", 50, 8, 256, 256, 3, false),
    ("cifar50_3x3_16", 50, 16, 256, 256, 3, false),
    ("cifar50_3x3_32", 50, 32, 256, 256, 3, false),
    ("tiny64_3x3_32", 64, 32, 64, 64, 3, false),
    ("tiny64_3x3_16", 64, 16, 64, 64, 3, false),
    ("tiny32_up3x3_32", 32, 16, 64, 64, 3, true),
    ("g128_up3x3_8", 8, 4, 1536, 1536, 3, true),
    ("g128_3x3_8", 8, 8, 1536, 1536, 3, false),
    ("g128_up3x3_16", 8, 8, 1536, 768, 3, true),
    ("g128_3x3_16", 8, 16, 768, 768, 3, false),
    ("g128_up3x3_32", 8, 16, 768, 384, 3, true),
    ("g128_3x3_32", 8, 32, 384, 384, 3, false),
    ("g128_up3x3_64", 8, 32, 384, 192, 3, true),
    ("g128_3x3_64", 8, 64, 192, 192, 3, false),
    ("g128_skip1x1_64", 8, 32, 384, 192, 1, true),
    ("g128_up3x3_128", 8, 64, 192, 96, 3, true),
    ("g128_3x3_128", 8, 128, 96, 96, 3, false),
    ("d128_3x3_64", 8, 64, 192, 192, 3, false),
    ("deep128_3x3_4", 1, 4, 512, 512, 3, false),
    ("deep128_up3x3_8", 1, 4, 512, 512, 3, true),
    ("deep128_3x3_8", 1, 8, 512, 512, 3, false),
    ("deep128_up3x3_16", 1, 8, 512, 512, 3, true),
    ("deep128_3x3_16", 1, 16, 256, 256, 3, false),
    ("deep128_up3x3_32", 1, 16, 256, 256, 3, true),
    ("deep128_3x3_32", 1, 32, 128, 128, 3, false),
    ("deep128_up3x3_64", 1, 32, 128, 128, 3, true),
    ("deep128_3x3_64", 1, 64, 64, 64, 3, false),
    ("deep128_up3x3_128", 1, 64, 64, 64, 3, true),
    ("deep128_3x3_128", 1, 128, 64, 64, 3, false),
  ]

  /// Inception-v3's convolutions (the FID network, 299x299 inputs) at
  /// batch 50, forward only: the stem, then one of each kernel of the
  /// 35x35, 17x17 and 8x8 blocks and of the reductions between them. Names
  /// give the output size.
  static let inceptionShapes: [ConvLayer] = {
    func layer(
      _ name: String, _ hw: Int, _ cin: Int, _ cout: Int, _ kh: Int, _ kw: Int,
      stride: Int = 1, pad: (Int, Int) = (0, 0)
    ) -> ConvLayer {
      ConvLayer(
        name: "inception_" + name, batch: 50, height: hw, width: hw, inChannels: cin,
        outChannels: cout,
        geometry: ConvolutionGeometry(
          kernelHeight: kh, kernelWidth: kw, stride: stride, paddingHeight: pad.0,
          paddingWidth: pad.1))
    }
    return [
      layer("stem_3x3s2_149", 299, 3, 32, 3, 3, stride: 2),
      layer("stem_3x3_147", 149, 32, 32, 3, 3),
      layer("stem_3x3p1_147", 147, 32, 64, 3, 3, pad: (1, 1)),
      layer("stem_1x1_73", 73, 64, 80, 1, 1),
      layer("stem_3x3_71", 73, 80, 192, 3, 3),
      layer("1x1_35", 35, 192, 64, 1, 1),
      layer("5x5_35", 35, 48, 64, 5, 5, pad: (2, 2)),
      layer("3x3_35_64_96", 35, 64, 96, 3, 3, pad: (1, 1)),
      layer("3x3_35_96_96", 35, 96, 96, 3, 3, pad: (1, 1)),
      layer("3x3s2_17_288_384", 35, 288, 384, 3, 3, stride: 2),
      layer("3x3s2_17_96_96", 35, 96, 96, 3, 3, stride: 2),
      layer("1x1_17", 17, 768, 192, 1, 1),
      layer("1x7_17_128", 17, 128, 128, 1, 7, pad: (0, 3)),
      layer("7x1_17_128_192", 17, 128, 192, 7, 1, pad: (3, 0)),
      layer("1x7_17_192", 17, 192, 192, 1, 7, pad: (0, 3)),
      layer("7x1_17_192", 17, 192, 192, 7, 1, pad: (3, 0)),
      layer("3x3s2_8_192_320", 17, 192, 320, 3, 3, stride: 2),
      layer("1x1_8", 8, 2048, 448, 1, 1),
      layer("3x3_8_448_384", 8, 448, 384, 3, 3, pad: (1, 1)),
      layer("1x3_8", 8, 384, 384, 1, 3, pad: (0, 1)),
      layer("3x1_8", 8, 384, 384, 3, 1, pad: (1, 0)),
    ]
  }()

  /// Attention cores: SAGAN at 64x64 in G (C = 192) and D (C = 96), batch 8,
  /// and a 32x32 one (C = 256, batch 16).
  static let attentionShapes: [(name: String, batch: Int, n: Int, m: Int, dk: Int, dv: Int)] = [
    ("g128_attn64", 8, 4096, 1024, 24, 96),
    ("d128_attn64", 8, 4096, 1024, 12, 48),
    ("attn32", 16, 1024, 256, 32, 128),
  ]

  static func all(quick: Bool) -> [BenchCase] {
    var cases: [BenchCase] = []
    for precision in Precision.allCases {
      for s in gemmShapes where !quick || s.m * s.n * s.k <= 1 << 30 {
        cases.append(gemm(s.name, s.m, s.n, s.k, s.transB, precision))
      }
      for s in convShapes where !quick || s.name.hasPrefix("cifar") {
        let layer = ConvLayer(
          name: s.name, batch: s.batch, height: s.hw, width: s.hw, inChannels: s.cin,
          outChannels: s.cout,
          geometry: ConvolutionGeometry(kernel: s.kernel, padding: s.kernel / 2, upsample: s.up))
        for pass in ["forward", "backward_data", "backward_weight"] {
          cases.append(conv(layer, pass, precision))
        }
      }
      for l in inceptionShapes where !quick {
        var c = conv(l, "forward", precision)
        c.group = .inception
        cases.append(c)
      }
      for s in attentionShapes where !quick || s.name == "attn32" {
        for pass in ["forward", "backward"] {
          cases.append(attention(s.name, s.batch, s.n, s.m, s.dk, s.dv, pass, precision))
        }
      }
    }
    return cases
  }

  static func gemm(_ name: String, _ m: Int, _ n: Int, _ k: Int, _ transB: Bool, _ precision: Precision) -> BenchCase {
    BenchCase(
      id: "gemm/\(name)/\(precision)", kernel: .gemm, precision: precision,
      spec: ["m": m, "n": n, "k": k, "transa": 0, "transb": transB ? 1 : 0],
      pass: "forward", flops: 2 * Double(m) * Double(n) * Double(k)
    ) {
      let arena = OperandArena()
      let a = arena.make(m * k), b = arena.make(k * n), c = arena.make(m * n)
      let p = precision == .fp32 ? BK_FP32 : BK_BF16
      return arena.keeping {
        bk_gemm(p, 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b,
                Int32(transB ? k : n), 0, c, Int32(n))
      }
    }
  }

  /// One convolution layer: batch, input extents and channels, and where
  /// the kernel goes.
  struct ConvLayer {
    var name: String
    var batch, height, width, inChannels, outChannels: Int
    var geometry: ConvolutionGeometry
  }

  static func conv(_ l: ConvLayer, _ pass: String, _ precision: Precision) -> BenchCase {
    let g = l.geometry
    var shape = bk_conv_shape(
      batch: Int32(l.batch), in_h: Int32(l.height), in_w: Int32(l.width),
      in_c: Int32(l.inChannels), out_c: Int32(l.outChannels),
      kernel_h: Int32(g.kernelHeight), kernel_w: Int32(g.kernelWidth), stride: Int32(g.stride),
      pad_h: Int32(g.paddingHeight), pad_w: Int32(g.paddingWidth), upsample: g.upsample ? 1 : 0)
    let outH = Int(bk_conv_out_h(&shape)), outW = Int(bk_conv_out_w(&shape))
    let macs = Double(l.batch * outH * outW * l.outChannels)
      * Double(g.kernelHeight * g.kernelWidth * l.inChannels)
    return BenchCase(
      id: "conv/\(l.name)/\(pass)/\(precision)", kernel: .conv, precision: precision,
      spec: [
        "batch": l.batch, "h": l.height, "w": l.width, "cin": l.inChannels,
        "cout": l.outChannels, "kernel_h": g.kernelHeight, "kernel_w": g.kernelWidth,
        "stride": g.stride, "pad_h": g.paddingHeight, "pad_w": g.paddingWidth,
        "upsample": g.upsample ? 1 : 0,
      ],
      pass: pass, flops: 2 * macs
    ) {
      let arena = OperandArena()
      let xCount = l.batch * l.height * l.width * l.inChannels
      let wCount = l.outChannels * g.kernelHeight * g.kernelWidth * l.inChannels
      let x = arena.make(xCount)
      let w = arena.make(wCount)
      let bias = arena.make(l.outChannels)
      let y = arena.make(l.batch * outH * outW * l.outChannels)
      let dx = arena.make(xCount)
      let dw = arena.make(wCount)
      let db = arena.make(l.outChannels)
      let p = precision == .fp32 ? BK_FP32 : BK_BF16
      switch pass {
      case "forward": return arena.keeping { bk_conv2d_forward(p, &shape, x, w, bias, y) }
      case "backward_data": return arena.keeping { bk_conv2d_backward_data(p, &shape, y, w, dx, 0) }
      default: return arena.keeping { bk_conv2d_backward_weight(p, &shape, x, y, dw, db, 0) }
      }
    }
  }

  static func attention(
    _ name: String, _ batch: Int, _ n: Int, _ m: Int, _ dk: Int, _ dv: Int, _ pass: String,
    _ precision: Precision
  ) -> BenchCase {
    // Forward: S = Q K^T and O = P V. Backward: S again, dP = dO V^T,
    // dV = P^T dO, dQ = dS K, dK = dS^T Q.
    let qk = Double(batch * n * m * dk), pv = Double(batch * n * m * dv)
    let flops = pass == "forward" ? 2 * (qk + pv) : 2 * (3 * qk + 2 * pv)
    return BenchCase(
      id: "attention/\(name)/\(pass)/\(precision)", kernel: .attention, precision: precision,
      spec: ["batch": batch, "n": n, "m": m, "dk": dk, "dv": dv], pass: pass, flops: flops
    ) {
      let arena = OperandArena()
      let theta = arena.make(batch * n * dk), phi = arena.make(batch * m * dk)
      let g = arena.make(batch * m * dv), out = arena.make(batch * n * dv)
      let lse = arena.make(batch * n), dout = arena.make(batch * n * dv)
      let dtheta = arena.make(batch * n * dk), dphi = arena.make(batch * m * dk)
      let dg = arena.make(batch * m * dv)
      let p = precision == .fp32 ? BK_FP32 : BK_BF16
      let (b, n32, m32, dk32, dv32) = (Int32(batch), Int32(n), Int32(m), Int32(dk), Int32(dv))
      bk_attention_forward(p, b, n32, m32, dk32, dv32, theta, phi, g, out, lse)
      if pass == "forward" {
        return arena.keeping { bk_attention_forward(p, b, n32, m32, dk32, dv32, theta, phi, g, out, lse) }
      }
      return arena.keeping {
        bk_attention_backward(
          p, b, n32, m32, dk32, dv32, theta, phi, g, out, lse, dout, dtheta, dphi, dg)
      }
    }
  }
}
