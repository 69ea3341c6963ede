import Testing

@testable import BigGAN

struct ImageNetClassesTests {
  @Test("1000 classes in the standard order: known indices, names and WordNet IDs")
  func knownClasses() {
    #expect(ImageNetClasses.count == 1000)
    #expect(ImageNetClasses.entries.count == 1000)
    #expect(ImageNetClasses.names(of: 0) == ["tench", "Tinca tinca"])
    #expect(ImageNetClasses.wordNetID(of: 0) == "n01440764")
    #expect(ImageNetClasses.name(of: 1) == "goldfish")
    #expect(ImageNetClasses.name(of: 207) == "golden retriever")
    #expect(ImageNetClasses.wordNetID(of: 207) == "n02099601")
    #expect(ImageNetClasses.name(of: 980) == "volcano")
    #expect(ImageNetClasses.names(of: 999) == ["toilet tissue", "toilet paper", "bathroom tissue"])
    #expect(ImageNetClasses.wordNetID(of: 999) == "n15075141")
    // Synonyms keep their spelling, including capitals, hyphens and apostrophes.
    #expect(ImageNetClasses.names(of: 2) == [
      "great white shark", "white shark", "man-eater", "man-eating shark", "Carcharodon carcharias",
    ])
    #expect(ImageNetClasses.name(of: 607) == "jack-o'-lantern")
  }

  @Test("WordNet IDs are unique and ascending, every class has non-empty names")
  func wordNetIDsSorted() {
    let ids = (0..<ImageNetClasses.count).map(ImageNetClasses.wordNetID(of:))
    #expect(Set(ids).count == 1000)
    #expect(ids == ids.sorted())
    #expect(ids.allSatisfy { $0.count == 9 && $0.hasPrefix("n") && $0.dropFirst().allSatisfy(\.isNumber) })
    for i in 0..<ImageNetClasses.count {
      let names = ImageNetClasses.names(of: i)
      #expect(!names.isEmpty && names.allSatisfy { !$0.isEmpty && $0 == $0.trimmingSpaces })
    }
  }

  @Test("lookup ignores case, surrounding and repeated spaces, and treats _ and - as spaces")
  func lookup() throws {
    #expect(try ImageNetClasses.index(matching: "golden retriever") == 207)
    #expect(try ImageNetClasses.index(matching: "Golden_Retriever") == 207)
    #expect(try ImageNetClasses.index(matching: "  golden-retriever\t") == 207)
    #expect(try ImageNetClasses.index(matching: "GOLDEN   retriever") == 207)
    #expect(try ImageNetClasses.index(matching: "tench") == 0)
    #expect(try ImageNetClasses.index(matching: "volcano") == 980)
    #expect(try ImageNetClasses.index(matching: "toilet_tissue") == 999)
    // Hyphenated names match with spaces and underscores too.
    #expect(try ImageNetClasses.index(matching: "jack o' lantern") == 607)
    #expect(try ImageNetClasses.index(matching: "hen_of_the_woods") == 996)
  }

  @Test("any synonym finds its class, not only the primary name")
  func synonyms() throws {
    #expect(try ImageNetClasses.index(matching: "Tinca tinca") == 0)
    #expect(try ImageNetClasses.index(matching: "carassius auratus") == 1)
    #expect(try ImageNetClasses.index(matching: "man-eater") == 2)
    #expect(try ImageNetClasses.index(matching: "toilet paper") == 999)
    // "tree frog" and "tree-frog" are two synonyms of one class, not an ambiguity.
    #expect(try ImageNetClasses.index(matching: "tree frog") == 31)
  }

  @Test("a synonym shared by several classes is an error listing them with their indices")
  func ambiguous() {
    #expect(throws: ClassNameError.ambiguous(
      query: "crane",
      candidates: [.init(index: 134, name: "crane"), .init(index: 517, name: "crane")])
    ) { try ImageNetClasses.index(matching: "crane") }
    do {
      _ = try ImageNetClasses.index(matching: "Maillot")
      Issue.record("'Maillot' should be ambiguous")
    } catch {
      #expect(error.description
        == "ImageNet class name 'Maillot' is ambiguous: 638 'maillot', 639 'maillot, tank suit'; pass the index instead")
    }
    // Shared secondary synonyms are ambiguous as well.
    #expect(throws: ClassNameError.self) { try ImageNetClasses.index(matching: "panda") }
  }

  @Test("every name that belongs to one class finds it; the ambiguous ones are exactly the shared ones")
  func roundTrip() {
    var ambiguous = Set<String>()
    for i in 0..<ImageNetClasses.count {
      for name in ImageNetClasses.names(of: i) {
        do {
          #expect(try ImageNetClasses.index(matching: name) == i, "\(name)")
        } catch {
          guard case .ambiguous(_, let candidates) = error else {
            Issue.record("\(name): \(error)")
            continue
          }
          #expect(candidates.map(\.index).contains(i))
          ambiguous.insert(ImageNetClasses.normalize(name))
        }
      }
    }
    #expect(ambiguous.count == 19)
    #expect(ambiguous.isSuperset(of: ["crane", "maillot", "cardigan", "grass snake", "sus scrofa"]))
  }

  @Test("an unknown name suggests close names: substrings first, then by edit distance")
  func unknown() {
    #expect(throws: ClassNameError.unknown(
      query: "golden retreiver", suggestions: [.init(index: 207, name: "golden retriever")])
    ) { try ImageNetClasses.index(matching: "golden retreiver") }
    do {
      _ = try ImageNetClasses.index(matching: "golden retreiver")
    } catch {
      #expect(error.description == "unknown ImageNet class 'golden retreiver'; did you mean 'golden retriever' (207)?")
    }
    do {
      _ = try ImageNetClasses.index(matching: "retriever")
      Issue.record("'retriever' is not a class name")
    } catch {
      guard case .unknown(_, let suggestions) = error else {
        Issue.record("\(error)")
        return
      }
      // Five classes contain "retriever"; the three nearest are offered.
      #expect(suggestions.map(\.index) == [207, 208, 205])
      #expect(error.description == "unknown ImageNet class 'retriever'; did you mean "
        + "'golden retriever' (207), 'Labrador retriever' (208) or 'flat-coated retriever' (205)?")
    }
    // A class is shown by its nearest qualifying synonym ("tiger", not "Panthera tigris").
    #expect(throws: ClassNameError.unknown(query: "tigr", suggestions: [
      .init(index: 292, name: "tiger"), .init(index: 78, name: "tick"), .init(index: 341, name: "pig"),
    ])) { try ImageNetClasses.index(matching: "tigr") }
    // Names that contain the query outrank names that are merely near ("pug" is 2 edits from "dog").
    #expect(throws: ClassNameError.unknown(query: "dog", suggestions: [
      .init(index: 934, name: "hotdog"), .init(index: 537, name: "dogsled"), .init(index: 251, name: "coach dog"),
    ])) { try ImageNetClasses.index(matching: "dog") }
    // Nothing near: no advice, but still a one-line error.
    #expect(throws: ClassNameError.unknown(query: "qqqqqqqqqqqq", suggestions: [])) {
      try ImageNetClasses.index(matching: "qqqqqqqqqqqq")
    }
    #expect(ClassNameError.unknown(query: "x", suggestions: []).description
      == "unknown ImageNet class 'x'; pass a class name or an index 0-999")
    // Numbers are the caller's business.
    #expect(throws: ClassNameError.self) { try ImageNetClasses.index(matching: "207") }
  }

  @Test("a very long unknown name is refused at once (its edit distance to every synonym is never computed)")
  func longQuery() {
    let query = String(repeating: "qwertyuiop", count: 10_000)
    #expect(throws: ClassNameError.unknown(query: query, suggestions: [])) {
      try ImageNetClasses.index(matching: query)
    }
  }

  @Test("a blank query is its own error")
  func empty() {
    #expect(throws: ClassNameError.empty) { try ImageNetClasses.index(matching: "") }
    #expect(throws: ClassNameError.empty) { try ImageNetClasses.index(matching: "  _-_ ") }
    #expect(!ClassNameError.empty.description.contains("\n"))
  }

  @Test("edit distance is Levenshtein")
  func editDistance() {
    func d(_ a: String, _ b: String) -> Int { ImageNetClasses.editDistance(Array(a), Array(b)) }
    #expect(d("", "abc") == 3)
    #expect(d("abc", "") == 3)
    #expect(d("kitten", "sitting") == 3)
    #expect(d("retreiver", "retriever") == 2)
    #expect(d("same", "same") == 0)
  }
}

extension String {
  fileprivate var trimmingSpaces: String {
    String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
  }
}
