import ArgumentParser
import BGKernels
import BigGAN

// The library's enums as command-line values: argument-parser turns any
// other value into a one-line error that names the accepted ones, and
// `--help` lists them.
extension Precision: ExpressibleByArgument {}
extension Truncation: ExpressibleByArgument {}
extension StatisticsBlend: ExpressibleByArgument {}
