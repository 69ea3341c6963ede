import Foundation

/// The class names a run was trained on, as `train` writes them to the run
/// folder's `classes.json` (a JSON array of the data set's class names in
/// index order: the built-in shapes, CIFAR-10's classes, or the sub-folder
/// names of an image folder), so samples can be asked for by those names.
public struct RunClassNames: Sendable, Equatable {
  /// The file the names were read from.
  public let path: String
  /// The names, class `i` at index `i`.
  public let names: [String]

  /// The names file of the run folder `folder`.
  public static func path(inRun folder: String) -> String {
    (folder as NSString).appendingPathComponent("classes.json")
  }

  /// The run folder that holds a checkpoint folder or weights file, when it
  /// sits where `train` puts them (`RUN/checkpoint/NAME/`, a file in it);
  /// nil for a checkpoint anywhere else or a path that does not exist.
  public static func runFolder(ofCheckpoint path: String) -> String? {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return nil }
    // Absolute and without `..`, so the parents are the real ones even for
    // a relative path such as `step-00000004/G_ema.safetensors`.
    let url = URL(fileURLWithPath: path).standardizedFileURL
    let checkpointFolder = isFolder.boolValue ? url : url.deletingLastPathComponent()
    let checkpoints = checkpointFolder.deletingLastPathComponent()
    guard checkpoints.lastPathComponent == "checkpoint" else { return nil }
    return checkpoints.deletingLastPathComponent().path
  }

  /// The names in `path`.
  /// - Throws: `FileError` naming the file when it cannot be read or is not
  ///   a JSON array of strings.
  public init(contentsOf path: String) throws(FileError) {
    names = try FileError.wrapping(path, cannot: "read the run's class names") {
      try JSONDecoder().decode([String].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
    self.path = path
  }

  /// The class called `name` (leading and trailing whitespace ignored): the
  /// name as written, else the one name equal to it when case is ignored;
  /// nil when there is none, or several that differ only in case.
  public func index(of name: String) -> Int? {
    let key = name.trimmingCharacters(in: .whitespaces)
    if let exact = names.firstIndex(of: key) { return exact }
    let folded = names.indices.filter { names[$0].caseInsensitiveCompare(key) == .orderedSame }
    return folded.count == 1 ? folded[0] : nil
  }

  /// Whether these are ImageNet's classes in ImageNet's order: the WordNet
  /// IDs a run on an ImageNet folder (one sub-folder per ID) records, for
  /// which ImageNet names pick the right classes too.
  public var areImageNetClasses: Bool {
    names.count == ImageNetClasses.count && names.indices.allSatisfy { names[$0] == ImageNetClasses.wordNetID(of: $0) }
  }
}
