/// Exact minimum-cost assignment of a rectangular cost matrix (the linear sum assignment problem),
/// by the shortest augmenting path method of Crouse (2016, "On implementing 2D rectangular
/// assignment algorithms"), the method scipy's `linear_sum_assignment` uses; ties are resolved the
/// same way, so the same matrix gives the same pairs.
public enum LinearAssignment {
  public enum Failure: Error, Equatable, CustomStringConvertible {
    /// The matrix holds NaN or -infinity.
    case invalidEntries
    /// No complete assignment has finite cost (too many +infinity entries).
    case infeasible

    public var description: String {
      switch self {
      case .invalidEntries: "the cost matrix contains NaN or -infinity"
      case .infeasible: "the cost matrix has no assignment of finite cost"
      }
    }
  }

  /// Pairs (row, column), one per row or per column whichever is fewer, sorted by row, minimising
  /// the total cost. `cost` is row-major `[rows][columns]`.
  public static func solve(cost: [Double], rows: Int, columns: Int) throws -> [(row: Int, column: Int)] {
    precondition(cost.count == rows * columns, "LinearAssignment: \(cost.count) costs for a \(rows)x\(columns) matrix")
    if rows == 0 || columns == 0 { return [] }
    // The method assigns every row; a tall matrix is solved transposed.
    let transposed = columns < rows
    var matrix = cost
    var (nr, nc) = (rows, columns)
    if transposed {
      for i in 0..<rows { for j in 0..<columns { matrix[j * rows + i] = cost[i * columns + j] } }
      (nr, nc) = (columns, rows)
    }
    if matrix.contains(where: { $0.isNaN || $0 == -.infinity }) { throw Failure.invalidEntries }

    var u = [Double](repeating: 0, count: nr)
    var v = [Double](repeating: 0, count: nc)
    var shortest = [Double](repeating: .infinity, count: nc)
    var path = [Int](repeating: -1, count: nc)
    var columnOfRow = [Int](repeating: -1, count: nr)
    var rowOfColumn = [Int](repeating: -1, count: nc)
    var visitedRows = [Bool](repeating: false, count: nr)
    var visitedColumns = [Bool](repeating: false, count: nc)
    var remaining = [Int](repeating: 0, count: nc)

    for currentRow in 0..<nr {
      // Dijkstra-like search for the shortest augmenting path from currentRow to a free column.
      var minimum = 0.0
      var remainingCount = nc
      // Filled in reverse so that a constant matrix yields the identity assignment.
      for index in 0..<nc { remaining[index] = nc - index - 1 }
      for index in 0..<nr { visitedRows[index] = false }
      for index in 0..<nc {
        visitedColumns[index] = false
        shortest[index] = .infinity
      }
      var sink = -1
      var i = currentRow
      while sink == -1 {
        var lowest = Double.infinity
        var chosen = -1
        visitedRows[i] = true
        for index in 0..<remainingCount {
          let j = remaining[index]
          let reduced = minimum + matrix[i * nc + j] - u[i] - v[j]
          if reduced < shortest[j] {
            path[j] = i
            shortest[j] = reduced
          }
          // Among equal costs prefer a free column: it ends the search.
          if shortest[j] < lowest || (shortest[j] == lowest && rowOfColumn[j] == -1) {
            lowest = shortest[j]
            chosen = index
          }
        }
        minimum = lowest
        if minimum == .infinity { throw Failure.infeasible }
        let j = remaining[chosen]
        if rowOfColumn[j] == -1 { sink = j } else { i = rowOfColumn[j] }
        visitedColumns[j] = true
        remainingCount -= 1
        remaining[chosen] = remaining[remainingCount]
      }
      // Update the dual variables.
      u[currentRow] += minimum
      for row in 0..<nr where visitedRows[row] && row != currentRow {
        u[row] += minimum - shortest[columnOfRow[row]]
      }
      for column in 0..<nc where visitedColumns[column] {
        v[column] -= minimum - shortest[column]
      }
      // Augment along the path.
      var j = sink
      while true {
        let row = path[j]
        rowOfColumn[j] = row
        swap(&columnOfRow[row], &j)
        if row == currentRow { break }
      }
    }
    if transposed {
      // Rows of the transposed problem are the original columns; report sorted by original row.
      return (0..<nr).map { (row: columnOfRow[$0], column: $0) }.sorted { $0.row < $1.row }
    }
    return (0..<nr).map { (row: $0, column: columnOfRow[$0]) }
  }
}
