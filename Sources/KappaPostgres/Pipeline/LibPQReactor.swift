import CLibPQ
import Foundation
import Synchronization

/// One thread that waits, with epoll, on the sockets of libpq connections whose statements are in
/// flight, and finishes them: reads the results and resumes the callers.
///
/// The caller sends its statement itself (libpq's non-blocking send, no thread switch), then arms the
/// socket here; adding a socket to epoll's interest list does not wake this thread. So a statement
/// costs one switch to this thread when its answer arrives and one back to the caller's, where a
/// statement handed to a thread of its own (a dispatch queue, NIO's event loop) costs a switch more.
package final class LibPQReactor: Sendable {
    /// What a socket waits for next.
    package enum Interest: Sendable {
        case read
        /// libpq still holds output the socket could not take: writable, or readable (the server's
        /// answers are read meanwhile).
        case readWrite
    }

    /// The process's reactor, started at first use.
    package static let shared = LibPQReactor()

    private let epoll: Int32
    /// Per armed socket, its owner (a connection may be gone and its number reused by another) and
    /// what to call when it is ready; the handler returns what to wait for next, or `nil`.
    private let handlers = Mutex<[Int32: (owner: ObjectIdentifier, handler: @Sendable () -> Interest?)]>([:])

    private init() {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epoll >= 0, "epoll_create1 failed: errno \(errno)")
        let thread = Thread { [self] in loop() }
        thread.name = "kappa.libpq-reactor"
        thread.start()
    }

    /// Calls `handler` on the reactor's thread once `socket` is ready for `interest`, and again for
    /// whatever it returns, until it returns `nil`. One handler a socket at a time: a new one
    /// replaces the last. `owner` is what ``forget(_:owner:)`` names.
    /// - Returns: `false` when the socket could not be watched (the handler is not kept).
    @discardableResult
    package func watch(_ socket: Int32, owner: ObjectIdentifier, for interest: Interest, _ handler: @escaping @Sendable () -> Interest?) -> Bool {
        // Armed under the lock, so that whoever sets a socket's handler last also arms it last.
        handlers.withLock { handlers in
            guard arm(socket, interest) else {
                handlers[socket] = nil
                return false
            }
            handlers[socket] = (owner, handler)
            return true
        }
    }

    /// Stops watching `socket` for `owner` before its connection closes; a socket whose number
    /// another owner has since been given is left alone.
    package func forget(_ socket: Int32, owner: ObjectIdentifier) {
        handlers.withLock { handlers in
            guard socket >= 0, handlers[socket].map({ $0.owner == owner }) ?? true else { return }
            handlers[socket] = nil
            _ = epoll_ctl(epoll, Int32(EPOLL_CTL_DEL), socket, nil)
        }
    }

    private func arm(_ socket: Int32, _ interest: Interest) -> Bool {
        var event = epoll_event()
        // One-shot: a socket fires once per arming, so its handler never runs twice at once.
        event.events = EPOLLIN.rawValue | EPOLLONESHOT.rawValue | (interest == .readWrite ? EPOLLOUT.rawValue : 0)
        event.data.fd = socket
        if epoll_ctl(epoll, Int32(EPOLL_CTL_MOD), socket, &event) == 0 { return true }
        return errno == ENOENT && epoll_ctl(epoll, Int32(EPOLL_CTL_ADD), socket, &event) == 0
    }

    private func loop() {
        let capacity: Int32 = 64
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Int(capacity))
        while true {
            let count = epoll_wait(epoll, events, capacity, -1)
            guard count >= 0 else {
                precondition(errno == EINTR, "epoll_wait failed: errno \(errno)")
                continue
            }
            for index in 0..<Int(count) {
                let socket = events[index].data.fd
                guard let (owner, handler) = handlers.withLock({ $0.removeValue(forKey: socket) }) else { continue }
                guard let next = handler() else { continue }
                // Armed again only if no one watched the socket meanwhile (a borrower of an idle
                // connection replaces its idle watch, and has armed the socket for itself).
                handlers.withLock { handlers in
                    guard handlers[socket] == nil, arm(socket, next) else { return }
                    handlers[socket] = (owner, handler)
                }
            }
        }
    }
}
