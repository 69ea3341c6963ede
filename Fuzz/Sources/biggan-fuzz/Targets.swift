import BigGAN
import Foundation

extension FuzzTarget {
  /// Every reader of outside bytes, by the file it reads.
  static let all: [FuzzTarget] = [
    FuzzTarget(name: "safetensors") { input in
      guard let file = try? SafeTensorsFile(data: input) else { return }
      for name in file.names {
        _ = try? file.tensor(name)
        _ = try? file.int64s(name)
      }
      _ = try? Checkpoint.configuration(of: file)
    },
    FuzzTarget(name: "npy") { input in
      _ = try? NPY.decode([UInt8](input), name: "input.npy")
    },
    FuzzTarget(name: "npz") { input in
      _ = try? ReferenceStatistics(contentsOf: ScratchFile.write(input, as: "input.npz"))
    },
    FuzzTarget(name: "png") { input in
      _ = try? PNG.read(ScratchFile.write(input, as: "input.png"))
    },
    // At full size, and scaled down as training decodes big photos.
    FuzzTarget(name: "jpeg") { input in
      let path = ScratchFile.write(input, as: "input.jpg")
      _ = try? JPEG.read(path)
      _ = try? JPEG.read(path, minimumSide: 32)
    },
    FuzzTarget(name: "cifar") { input in
      guard let records = try? CIFAR10Dataset(files: [ScratchFile.write(input, as: "data_batch_1.bin")])
      else { return }
      for index in 0..<records.count { _ = records.sample(index) }
    },
    FuzzTarget(name: "state") { input in
      _ = ScratchFile.write(input, as: "state.json")
      _ = try? Checkpoint.state(at: ScratchFile.folder)
    },
    // A weights file's `config` metadata (the `model` of a run's
    // config.json): what `sample` and `bench --checkpoint` build a model from.
    FuzzTarget(name: "config") { input in
      let writer = SafeTensorsWriter(metadata: ["config": String(decoding: input, as: UTF8.self)])
      guard let bytes = try? writer.encoded(), let file = try? SafeTensorsFile(data: bytes),
        let model = try? Checkpoint.configuration(of: file)
      else { return }
      try? model.validate()
    },
    // `--classes` names, looked up among the 1000 ImageNet classes.
    FuzzTarget(name: "classes") { input in
      _ = try? ImageNetClasses.index(matching: String(decoding: input, as: UTF8.self))
    },
  ]
}
