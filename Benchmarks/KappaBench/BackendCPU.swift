import Foundation
import PostgresNIO

/// CPU time the server's processes have used, by `application_name` (client backends) or by
/// `backend_type` (the server's own: WAL writer, checkpointer, autovacuum), read from `/proc`:
/// the benchmark and the server share this machine. Empty where `/proc` cannot be read, or when
/// the server runs elsewhere (a process of that id here is not named `postgres`).
struct BackendCPU {
    /// CPU seconds so far, and the group each process counts in.
    private var processes: [Int32: (group: String, seconds: Double)] = [:]

    static func now(_ client: PostgresClient) async throws -> BackendCPU {
        var snapshot = BackendCPU()
        let rows = try await client.query(
            """
            SELECT pid, CASE WHEN backend_type = 'client backend' THEN coalesce(nullif(application_name, ''), 'other client') ELSE backend_type END
            FROM pg_stat_activity
            """)
        for try await (pid, group) in rows.decode((Int32, String).self) {
            if let seconds = processCPUSeconds(pid, command: "postgres") { snapshot.processes[pid] = (group, seconds) }
        }
        return snapshot
    }

    /// Seconds each group used since `start`, for the processes running now (one not in `start`
    /// began since and counts from zero; one that has ended since — an autovacuum worker — is
    /// missed). Groups are named as they are now: a listener renames its connection while it listens.
    func since(_ start: BackendCPU) -> [String: Double] {
        var groups: [String: Double] = [:]
        for (pid, now) in processes {
            let before = start.processes[pid]?.seconds ?? 0
            let group = now.group.hasPrefix("kappa-listener") ? "listener" : now.group
            groups[group, default: 0] += now.seconds - before
        }
        return groups
    }

}

/// utime + stime of a process, from `/proc/<pid>/stat` (fields 14 and 15, in clock ticks); `nil` when
/// it is gone, or its command is not `command`.
func processCPUSeconds(_ pid: Int32, command: String? = nil) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")"), command.map({ text[..<close].hasSuffix("(\($0)") }) ?? true
    else { return nil }
    // The fields after the command name (which may hold spaces) start with the state, field 3.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}
