import Crypto

@testable import FoxCluster

/// `address-book`: the files of a cluster node besides users.toml: `address-book.toml`
/// (`AddressBook.parse`, `serialized`), the PEM and DER of its public keys, the node's own key
/// file (`key_N.pem`, SEC1 or PKCS#8) and `HOST:PORT` addresses. The first byte picks the reader:
///
/// - 0: the rest is an address book; one that loads is written again and loads to the same
///   entries, members and digest, and writing it again gives the same text.
/// - 1: a `PUBLIC KEY` PEM; the DER it yields, written as PEM again, reads back the same.
/// - 2: SubjectPublicKeyInfo DER; a key that reads is exactly the canonical DER of that key.
/// - 3: a key file; the key read, written as SEC1 PEM, reads back as the same key.
/// - 4, 5: SEC1 and PKCS#8 DER of a private key.
/// - 6: an address; its canonical spelling parses to the same address and spells the same.
let addressBookHarness = Harness(
    name: "address-book", summary: "address-book.toml, PEM and DER keys, key files, HOST:PORT (read, write, read)",
    run: fuzzAddressBook, seeds: addressBookSeeds,
    // TOMLKit 0.6.0 never frees a parsed document, nor the strdup'ed copy `.string` returns, nor
    // its error record: a few KB per read of the file (once at start-up in foxmq). LeakSanitizer
    // would stop at the first, and a leak check after every input costs milliseconds.
    findsLeaks: false)

@Sendable func fuzzAddressBook(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let mode = input.byte() % 7
    let rest = input.rest()
    switch mode {
    case 0:
        guard let text = String(validating: rest, as: UTF8.self),
            let book = try? AddressBook.parse(text, path: "address-book.toml")
        else { return }
        let written = book.serialized()
        guard let again = try? AddressBook.parse(written, path: "address-book.toml") else {
            fatalError("address-book: the book written for \(book.entries) does not load:\n\(written)")
        }
        require(again.entries == book.entries, "address-book: \(book.entries) came back as \(again.entries)")
        require(again.members == book.members, "address-book: the members changed in the round trip")
        require(again.digest == book.digest, "address-book: the digest changed in the round trip")
        require(again.serialized() == written, "address-book: writing is not stable")
    case 1:
        guard let text = String(validating: rest, as: UTF8.self), let der = try? NodePublicKey.parse(pem: text) else {
            return
        }
        let pem = NodePublicKey.pem(der: der)
        guard let again = try? NodePublicKey.parse(pem: pem) else {
            fatalError("address-book: the PEM written for a key that read does not read:\n\(pem)")
        }
        require(again == der, "address-book: the key's DER changed in the PEM round trip")
    case 2:
        guard let key = try? NodePublicKey.parse(der: rest) else { return }
        require(NodePublicKey.der(of: key) == rest, "address-book: a non-canonical DER key was accepted: \(rest)")
    case 3:
        guard let text = String(validating: rest, as: UTF8.self), let key = try? NodeKey.parse(pem: text, path: "key")
        else { return }
        checkKeyRoundTrip(key.privateKey)
    case 4:
        guard let key = try? NodeKey.parseSEC1(rest) else { return }
        checkKeyRoundTrip(key)
    case 5:
        guard let key = try? NodeKey.parsePKCS8(rest) else { return }
        checkKeyRoundTrip(key)
    default:
        guard let text = String(validating: rest, as: UTF8.self), let address = try? ClusterAddress(parsing: text)
        else { return }
        let spelled = address.description
        guard let again = try? ClusterAddress(parsing: spelled) else {
            fatalError("address-book: \(text.debugDescription) parsed, its spelling \(spelled) does not")
        }
        require(again == address, "address-book: \(spelled) parses to \(again), not \(address)")
        require(again.description == spelled, "address-book: \(spelled) is spelled \(again.description) next")
    }
}

private func checkKeyRoundTrip(_ key: P256.Signing.PrivateKey) {
    let node = NodeKey(privateKey: key)
    guard let again = try? NodeKey.parse(pem: node.pemRepresentation, path: "key") else {
        fatalError("address-book: the SEC1 PEM written for a key that read does not read")
    }
    require(
        again.privateKey.rawRepresentation == key.rawRepresentation, "address-book: the key changed in the round trip")
    require(again.publicKeyDER == node.publicKeyDER, "address-book: the public key changed in the round trip")
}

@Sendable func addressBookSeeds() -> [Seed] {
    let keys = (1...3).map { index in
        // Fixed scalars: the seeds are the same on every run.
        must("a P-256 key") {
            try P256.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: UInt8(index), count: 32))
        }
    }
    let entries = zip(keys, ["127.0.0.1:19793", "[::1]:19794", "node-3.example:19795"]).map {
        AddressBook.Entry(publicKeyDER: NodePublicKey.der(of: $0.0.publicKey), address: $0.1)
    }
    let book = must("the seed address book") { try AddressBook(entries: entries) }
    let node = NodeKey(privateKey: keys[0])
    let pkcs8 = Array(keys[1].derRepresentation)
    var seeds = [
        Seed("book", [0] + Array(book.serialized().utf8)),
        Seed("public-pem", [1] + Array(NodePublicKey.pem(der: entries[0].publicKeyDER).utf8)),
        Seed("public-der", [2] + entries[1].publicKeyDER),
        Seed("key-sec1-pem", [3] + Array(node.pemRepresentation.utf8)),
        Seed("key-pkcs8-pem", [3] + Array(keys[2].pemRepresentation.utf8)),
        Seed("key-sec1-der", [4] + node.sec1DER),
        Seed("key-pkcs8-der", [5] + pkcs8),
    ]
    for (index, address) in ["10.0.0.1:1", "[2001:db8::1]:443", "Host-Name.Example:65535", "[::ffff:1.2.3.4]:9"]
        .enumerated()
    {
        seeds.append(Seed("address-\(index)", [6] + Array(address.utf8)))
    }
    return seeds
}
