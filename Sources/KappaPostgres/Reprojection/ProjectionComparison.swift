import Kappa

/// Two versions of a projection compared over the same stretch of the log, table by table, on the
/// columns they share (as text, so a changed column type still compares by value).
public struct ProjectionComparison: Sendable, Hashable {
    /// One relation (table, view or materialized view) both versions have, compared on its shared columns.
    public struct Table: Sendable, Hashable {
        /// The relation's name, the same in both versions' schemas.
        public var name: String
        /// The columns both versions have: the ones compared.
        public var comparedColumns: [String]
        /// Columns only the old version has (not compared).
        public var columnsOnlyInOld: [String]
        /// Columns only the new version has (not compared).
        public var columnsOnlyInNew: [String]
        /// Rows in the old version's relation.
        public var rowsInOld: Int
        /// Rows in the new version's relation.
        public var rowsInNew: Int
        /// Rows (on the compared columns) the old version has and the new one lacks, and the reverse.
        public var rowsOnlyInOld: Int
        /// Rows (on the compared columns) the new version has and the old one lacks.
        public var rowsOnlyInNew: Int

        /// Whether both versions hold the same rows on the compared columns, duplicates counted.
        public var isEqual: Bool { rowsOnlyInOld == 0 && rowsOnlyInNew == 0 }
    }

    /// The projection's name.
    public var name: String
    /// The version compared from (usually the active one).
    public var oldVersion: Int
    /// The version compared with it (usually the one to promote).
    public var newVersion: Int
    /// The old version's checkpoint in the comparison's snapshot.
    public var oldCheckpoint: LogPosition
    /// The new version's checkpoint in the comparison's snapshot.
    public var newCheckpoint: LogPosition
    /// The relations both versions have, each compared.
    public var tables: [Table]
    /// Relations only the old version has (not compared).
    public var tablesOnlyInOld: [String]
    /// Relations only the new version has (not compared).
    public var tablesOnlyInNew: [String]

    /// Whether both versions had applied exactly the same events when compared.
    public var samePosition: Bool { oldCheckpoint == newCheckpoint }
    /// Rows that differ, over every shared table.
    public var differingRows: Int { tables.reduce(0) { $0 + $1.rowsOnlyInOld + $1.rowsOnlyInNew } }
    /// Same position, and every shared table holds the same rows on its shared columns.
    public var isEqual: Bool { samePosition && differingRows == 0 }
}
