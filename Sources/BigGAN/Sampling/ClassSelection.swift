import Foundation

/// Classes named as a user names them: indices, the names a run was trained
/// on (its classes.json), or ImageNet's names for 1000-class models without
/// names of their own (imported weights) or trained on ImageNet.
public struct ClassSelection: Sendable {
  /// The model's number of classes.
  public let classes: Int
  /// The run folder the model was trained in, when known.
  public let runFolder: String?

  public init(classes: Int, runFolder: String?) {
    self.classes = classes
    self.runFolder = runFolder
  }

  /// A list that cannot be read as classes; `description` starts with the
  /// name of the input it was given as.
  public struct Failure: Error, CustomStringConvertible, Sendable {
    public let description: String
  }

  /// `text` (comma-separated indices or names, or `all`) as class indices,
  /// in the order given; errors name the input as `input`.
  public func indices(_ text: String, input: String) throws(Failure) -> [Int] {
    if text == "all" { return Array(0..<classes) }
    guard text.contains(where: { $0 != "," && $0 != " " }) else {
      throw Failure(description: "\(input) is empty; expected indices, class names or 'all'")
    }
    let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    // Indices alone need no classes.json, so a damaged one cannot stop them.
    let names = parts.allSatisfy { Int($0) != nil } ? nil : try runNames()
    var chosen: [Int] = []
    for text in parts {
      if let k = Int(text) {
        guard k >= 0, k < classes else { throw Failure(description: "\(input): \(k) is not a class index in 0..<\(classes)") }
        chosen.append(k)
        continue
      }
      if let names {
        if let k = names.index(of: text) {
          chosen.append(k)
          continue
        }
        guard names.areImageNetClasses else { throw unknown(text, names, input: input) }
      } else if classes != ImageNetClasses.count {
        throw Failure(description: "\(input): '\(text)' is not a class index in 0..<\(classes) (names are for 1000-class ImageNet models)")
      }
      do { chosen.append(try ImageNetClasses.index(matching: text)) } catch { throw Failure(description: "\(input): \(error.description)") }
    }
    return chosen
  }

  /// The class names of the run the model was trained in; nil when there
  /// are none (imported weights, a checkpoint outside a run folder).
  public func runNames() throws(Failure) -> RunClassNames? {
    guard let runFolder else { return nil }
    let path = RunClassNames.path(inRun: runFolder)
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    let run: RunClassNames
    do { run = try RunClassNames(contentsOf: path) } catch { throw Failure(description: error.description) }
    guard run.names.count == classes else {
      throw Failure(description: "\(path): \(run.names.count) class names, but the model has \(classes) classes")
    }
    return run
  }

  /// Where names come from: the run's own, ImageNet's, or none (indices).
  public enum NameSource: String, Sendable { case run, imagenet, index }

  /// A name for every class, and where the names come from: the run's, else
  /// ImageNet's for a 1000-class model, else the indices.
  public func displayNames() throws(Failure) -> (names: [String], source: NameSource) {
    if let run = try runNames() {
      return run.areImageNetClasses ? ((0..<classes).map(ImageNetClasses.name(of:)), .imagenet) : (run.names, .run)
    }
    if classes == ImageNetClasses.count { return ((0..<classes).map(ImageNetClasses.name(of:)), .imagenet) }
    return ((0..<classes).map(String.init), .index)
  }

  /// The error for a name that is not one of the run's: the run's names
  /// (the first 20 of a long list), and a word on ImageNet names for those
  /// who tried one.
  func unknown(_ text: String, _ run: RunClassNames, input: String) -> Failure {
    let shown = run.names.prefix(20).joined(separator: ", ") + (run.names.count > 20 ? ", ... (\(run.names.count) in all)" : "")
    var message = "\(input): '\(text)' is not a class of this run (\(run.path): \(shown)) nor a class index in 0..<\(run.names.count)"
    switch Result(catching: { () throws(ClassNameError) in try ImageNetClasses.index(matching: text) }) {
    case .success, .failure(.ambiguous): message += "; ImageNet names are for 1000-class ImageNet models"
    case .failure: break
    }
    return Failure(description: message)
  }
}
