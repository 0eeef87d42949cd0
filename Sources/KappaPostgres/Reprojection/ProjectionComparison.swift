import Kappa

/// Two versions of a projection compared over the same stretch of the log, table by table, on the
/// columns they share (as text, so a changed column type still compares by value).
public struct ProjectionComparison: Sendable, Hashable {
    public struct Table: Sendable, Hashable {
        public var name: String
        /// The columns both versions have: the ones compared.
        public var comparedColumns: [String]
        public var columnsOnlyInOld: [String]
        public var columnsOnlyInNew: [String]
        public var rowsInOld: Int
        public var rowsInNew: Int
        /// Rows (on the compared columns) the old version has and the new one lacks, and the reverse.
        public var rowsOnlyInOld: Int
        public var rowsOnlyInNew: Int

        public var isEqual: Bool { rowsOnlyInOld == 0 && rowsOnlyInNew == 0 }
    }

    public var name: String
    public var oldVersion: Int
    public var newVersion: Int
    public var oldCheckpoint: LogPosition
    public var newCheckpoint: LogPosition
    public var tables: [Table]
    public var tablesOnlyInOld: [String]
    public var tablesOnlyInNew: [String]

    /// Whether both versions had applied exactly the same events when compared.
    public var samePosition: Bool { oldCheckpoint == newCheckpoint }
    /// Rows that differ, over every shared table.
    public var differingRows: Int { tables.reduce(0) { $0 + $1.rowsOnlyInOld + $1.rowsOnlyInNew } }
    /// Same position, and every shared table holds the same rows on its shared columns.
    public var isEqual: Bool { samePosition && differingRows == 0 }
}
