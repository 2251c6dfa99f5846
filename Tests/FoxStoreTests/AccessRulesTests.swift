import FoxStore
import XCTest

/// `AccessRules`, the pure matcher a node asks before it accepts a PUBLISH or grants a
/// subscription. Each test builds a small rule list (ids give the evaluation order) and checks
/// decisions for named clients. Wildcard rules follow MQTT 5 section 4.7 (4.7.1 wildcards,
/// 4.7.2 topics beginning with `$`); shared subscriptions are section 4.8.2.
final class AccessRulesTests: XCTestCase {
    var nextID: Int64 = 0

    func rule(
        _ subject: AccessRule.Subject, _ action: AccessRule.Action, _ filter: String,
        _ permission: AccessRule.Permission = .allow
    ) -> AccessRule {
        nextID += 1
        return AccessRule(id: nextID, subject: subject, action: action, topicFilter: filter, permission: permission)
    }

    func pub(_ rules: AccessRules, _ topic: String, _ user: String?, client: String = "c1") -> Bool {
        rules.mayPublish(topic: topic, username: user, clientIdentifier: client)
    }

    func sub(_ rules: AccessRules, _ filter: String, _ user: String?, client: String = "c1") -> Bool {
        rules.maySubscribe(filter: filter, username: user, clientIdentifier: client)
    }

    /// No rules at all: everything is allowed, as before rules existed.
    func testNoRulesAllowsEverything() {
        let rules = AccessRules([])
        XCTAssertTrue(rules.isEmpty)
        XCTAssertTrue(pub(rules, "a/b", "alice"))
        XCTAssertTrue(pub(rules, "$SYS/x", nil))
        XCTAssertTrue(sub(rules, "#", nil))
        XCTAssertTrue(sub(rules, "$share/g/#", "bob"))
        XCTAssertEqual(
            rules.publishDecision(topic: "a", username: nil, clientIdentifier: "c"), .init(isAllowed: true, rule: nil))
    }

    /// One rule anywhere turns the default to deny, for every subject and both actions.
    func testOneRuleDeniesWhateverNoRuleAllows() {
        let rules = AccessRules([rule(.user("alice"), .publish, "a/#")])
        XCTAssertTrue(pub(rules, "a/b", "alice"))
        XCTAssertFalse(pub(rules, "b", "alice"))
        XCTAssertFalse(sub(rules, "a/b", "alice"), "a publish rule does not allow subscribing")
        XCTAssertFalse(pub(rules, "a/b", "bob"))
        XCTAssertFalse(pub(rules, "a/b", nil))
        XCTAssertEqual(
            rules.publishDecision(topic: "b", username: "alice", clientIdentifier: "c"),
            .init(isAllowed: false, rule: nil))
    }

    /// MQTT topic matching for publish: `+` one level, `#` the parent and any children, and no
    /// wildcard in the first level reaches a `$` topic (4.7.2).
    func testPublishWildcards() {
        let rules = AccessRules([
            rule(.allUsers, .publish, "a/+/c"),
            rule(.allUsers, .publish, "d/#"),
            rule(.allUsers, .publish, "#", .deny),
            rule(.user("root"), .publish, "#"),
            rule(.user("root"), .publish, "$SYS/#"),
        ])
        XCTAssertTrue(pub(rules, "a/b/c", "u"))
        XCTAssertTrue(pub(rules, "a//c", "u"))
        XCTAssertFalse(pub(rules, "a/b/c/d", "u"))
        XCTAssertFalse(pub(rules, "a/c", "u"))
        XCTAssertTrue(pub(rules, "d", "u"))
        XCTAssertTrue(pub(rules, "d/e/f", "u"))
        XCTAssertFalse(pub(rules, "de", "u"))
        XCTAssertFalse(pub(rules, "e", "u"))
        XCTAssertTrue(pub(rules, "anything/at/all", "root"))
        XCTAssertTrue(pub(rules, "$SYS/x", "root"), "by the explicit $SYS/# rule")
        let rootDollar = rules.publishDecision(topic: "$SYS/x", username: "root", clientIdentifier: "c")
        XCTAssertEqual(rootDollar.rule?.topicFilter, "$SYS/#", "'#' does not match a $ topic")
        XCTAssertFalse(pub(rules, "$SYS/x", "u"), "neither the allow d/# nor the deny # matches: no match, deny")
        XCTAssertFalse(pub(rules, "a/+/c", "u"), "a topic name with a wildcard is invalid")
        XCTAssertFalse(pub(rules, "", "u"))
    }

    /// `%u` and `%c` stand for the user name and the client identifier.
    func testPlaceholders() {
        let rules = AccessRules([
            rule(.allUsers, .publish, "users/%u/#"),
            rule(.allUsers, .subscribe, "clients/%c/+"),
            rule(.anonymous, .publish, "anon/%c"),
            rule(.anonymous, .publish, "named/%u"),
            rule(.allUsers, .publish, "100%/literal"),
        ])
        XCTAssertTrue(pub(rules, "users/alice/x", "alice"))
        XCTAssertTrue(pub(rules, "users/alice", "alice"))
        XCTAssertFalse(pub(rules, "users/bob/x", "alice"))
        XCTAssertTrue(sub(rules, "clients/c7/inbox", "alice", client: "c7"))
        XCTAssertTrue(sub(rules, "clients/c7/+", "alice", client: "c7"))
        XCTAssertFalse(sub(rules, "clients/c8/inbox", "alice", client: "c7"))
        XCTAssertTrue(pub(rules, "anon/c9", nil, client: "c9"))
        XCTAssertFalse(pub(rules, "named/x", nil), "%u never matches for an anonymous client")
        XCTAssertTrue(pub(rules, "100%/literal", "alice"), "a % not followed by u or c is literal")
    }

    /// A value holding `/`, `+` or `#`, an empty value, or a `$` value at the start would widen
    /// the rule: such a rule does not match at all.
    func testASubstitutionCannotWidenARule() {
        let rules = AccessRules([
            rule(.allUsers, .publish, "users/%u/#"),
            rule(.allUsers, .subscribe, "users/%u/+"),
            rule(.allUsers, .publish, "%c/#"),
        ])
        XCTAssertFalse(pub(rules, "users/a/b/x", "a/b"), "a '/' in the user name would add a level")
        XCTAssertFalse(sub(rules, "users/x/+", "+"))
        XCTAssertFalse(sub(rules, "users/+/+", "+"), "'+' as a user name would cover every user")
        XCTAssertFalse(sub(rules, "users/#", "#"))
        XCTAssertFalse(pub(rules, "users/#/x", "#"))
        XCTAssertFalse(pub(rules, "x/y", "u", client: "+"))
        XCTAssertFalse(pub(rules, "/y", "u", client: ""), "an empty client identifier does not substitute")
        XCTAssertFalse(pub(rules, "$SYS/y", "u", client: "$SYS"), "a client id cannot reach $ topics")
        XCTAssertTrue(pub(rules, "dev1/y", "u", client: "dev1"))
        // The same rules with safe values do match.
        XCTAssertTrue(pub(rules, "users/ab/x", "ab"))
    }

    /// The first matching rule in id order decides, so a deny before an allow carves an
    /// exception out of it, and the same rules in the other order do not.
    func testFirstMatchInIDOrderDecides() {
        let denyFirst = AccessRules([
            rule(.allUsers, .publish, "a/secret", .deny),
            rule(.allUsers, .publish, "a/#"),
        ])
        XCTAssertFalse(pub(denyFirst, "a/secret", "u"))
        XCTAssertTrue(pub(denyFirst, "a/public", "u"))
        XCTAssertEqual(
            denyFirst.publishDecision(topic: "a/secret", username: "u", clientIdentifier: "c").rule?.permission, .deny)

        let allowFirst = AccessRules([
            rule(.allUsers, .publish, "a/#"),
            rule(.allUsers, .publish, "a/secret", .deny),
        ])
        XCTAssertTrue(pub(allowFirst, "a/secret", "u"))

        // The order is the ids', not the array's.
        let shuffled = AccessRules([
            AccessRule(id: 9, subject: .allUsers, action: .publish, topicFilter: "a/#", permission: .allow),
            AccessRule(id: 3, subject: .allUsers, action: .publish, topicFilter: "a/secret", permission: .deny),
        ])
        XCTAssertEqual(shuffled.rules.map(\.id), [3, 9])
        XCTAssertFalse(pub(shuffled, "a/secret", "u"))
    }

    /// A user's own rules are tried before the all-users rules, whatever their ids.
    func testAUsersOwnRulesComeBeforeAllUsersRules() {
        let rules = AccessRules([
            rule(.allUsers, .publish, "x/#", .deny),
            rule(.user("alice"), .publish, "x/alice"),
            rule(.allUsers, .publish, "#"),
        ])
        XCTAssertTrue(pub(rules, "x/alice", "alice"))
        XCTAssertFalse(pub(rules, "x/alice", "bob"))
        XCTAssertFalse(pub(rules, "x/other", "alice"))
        XCTAssertTrue(pub(rules, "y", "alice"))
    }

    /// Anonymous clients match only anonymous rules; anonymous rules do not apply to users.
    func testAnonymousClients() {
        let rules = AccessRules([
            rule(.anonymous, .subscribe, "public/#"),
            rule(.allUsers, .subscribe, "members/#"),
            rule(.user("alice"), .subscribe, "alice/#"),
        ])
        XCTAssertTrue(sub(rules, "public/news", nil))
        XCTAssertFalse(sub(rules, "members/news", nil), "all-users rules are for clients with a user name")
        XCTAssertFalse(sub(rules, "alice/x", nil))
        XCTAssertFalse(sub(rules, "public/news", "alice"), "anonymous rules are not for users")
        XCTAssertTrue(sub(rules, "members/news", "alice"))
        XCTAssertTrue(sub(rules, "alice/x", "alice"))
    }

    /// A subscription is allowed when the rule's filter covers the requested one (every topic
    /// the request can match, the rule matches).
    func testSubscribeCoverage() {
        let plus = AccessRules([rule(.allUsers, .subscribe, "a/+")])
        XCTAssertTrue(sub(plus, "a/b", "u"))
        XCTAssertTrue(sub(plus, "a/+", "u"))
        XCTAssertFalse(sub(plus, "a/#", "u"), "a/# also matches a and a/b/c")
        XCTAssertFalse(sub(plus, "a/b/c", "u"))
        XCTAssertFalse(sub(plus, "a", "u"))
        XCTAssertFalse(sub(plus, "+/b", "u"))

        let hash = AccessRules([rule(.allUsers, .subscribe, "a/#")])
        XCTAssertTrue(sub(hash, "a", "u"))
        XCTAssertTrue(sub(hash, "a/#", "u"))
        XCTAssertTrue(sub(hash, "a/+/c", "u"))
        XCTAssertTrue(sub(hash, "a/b/#", "u"))
        XCTAssertFalse(sub(hash, "#", "u"))
        XCTAssertFalse(sub(hash, "b/#", "u"))

        let everything = AccessRules([rule(.allUsers, .subscribe, "#")])
        XCTAssertTrue(sub(everything, "#", "u"))
        XCTAssertTrue(sub(everything, "+/x", "u"))
        XCTAssertFalse(sub(everything, "$SYS/#", "u"), "'#' does not cover $ topics (4.7.2)")
        XCTAssertFalse(sub(everything, "a/#/b", "u"), "an invalid filter is denied")
        XCTAssertFalse(sub(everything, "a+", "u"))
    }

    /// A deny rule refuses every request that overlaps it, so a wide request cannot reach the
    /// topics an exception denies.
    func testSubscribeDenyRulesMatchOverlappingRequests() {
        let rules = AccessRules([
            rule(.allUsers, .subscribe, "a/secret", .deny),
            rule(.allUsers, .subscribe, "a/#"),
        ])
        XCTAssertFalse(sub(rules, "a/secret", "u"))
        XCTAssertFalse(sub(rules, "a/+", "u"), "would receive a/secret")
        XCTAssertFalse(sub(rules, "a/#", "u"))
        XCTAssertTrue(sub(rules, "a/public", "u"))
        XCTAssertTrue(sub(rules, "a/+/x", "u"), "cannot match a/secret")
        XCTAssertTrue(sub(rules, "a", "u"))
    }

    /// `$share/GROUP/FILTER` is checked on FILTER (MQTT 5 section 4.8.2); a malformed share
    /// request is denied.
    func testSharedSubscriptionsAreCheckedOnTheirFilter() {
        let rules = AccessRules([rule(.allUsers, .subscribe, "jobs/#")])
        XCTAssertTrue(sub(rules, "$share/workers/jobs/build", "u"))
        XCTAssertTrue(sub(rules, "$share/workers/jobs/#", "u"))
        XCTAssertFalse(sub(rules, "$share/workers/other", "u"))
        XCTAssertFalse(sub(rules, "$share/jobs", "u"), "no filter part")
        XCTAssertFalse(sub(rules, "$share//jobs/x", "u"), "empty group")
        XCTAssertFalse(sub(rules, "$share/g+/jobs/x", "u"), "wildcard in the group")
        XCTAssertFalse(sub(rules, "$share/workers/", "u"))
    }

    /// Publish rules and subscribe rules are separate.
    func testActionsAreSeparate() {
        let rules = AccessRules([
            rule(.allUsers, .subscribe, "a/#"),
            rule(.allUsers, .publish, "b/#"),
        ])
        XCTAssertTrue(sub(rules, "a/x", "u"))
        XCTAssertFalse(pub(rules, "a/x", "u"))
        XCTAssertTrue(pub(rules, "b/x", "u"))
        XCTAssertFalse(sub(rules, "b/x", "u"))
    }
}
