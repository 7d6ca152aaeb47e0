package fixtures.ops;

import java.util.List;
import java.util.Map;

/**
 * Operators in comments must never be targets: a && b || !c, x == y, x != y, i++ and j--,
 * a + b - c * d / e % f, x <= y, x >= y, total += 1; brackets too: ) ] }.
 */
public class Operators {
    // line comment with && || == != += -= <<= >>= ++ -- ( ) [ ] { }
    private final Map<String, List<Integer>> index = new java.util.HashMap<>();
    private final List<List<String>> nested = List.of(List.of("a < b", "c > d"));

    static boolean check(int a, int b, boolean c) {
        String text = "a && b || !c == d != e";
        char op = '+';
        boolean result = a < b && !c || a == b;
        result = result && (a != b) || a >= b;
        if (a <= b && b > 0) {
            result = !result;
        }
        return result;
    }

    static int arithmetic(int x, int y) {
        int total = x + y - x * y / (y == 0 ? 1 : y) % 7;
        total += x;
        total -= y;
        total *= 2;
        total /= 3;
        total %= 5;
        total &= 0xFF;
        total |= 1;
        total ^= 4;
        total <<= 1;
        total >>= 2;
        total >>>= 1;
        int negative = -x + +y;
        int shifted = x << 2 >> 1 >>> 3;
        for (int i = 0; i < 10; i++) {
            total = total + i;
        }
        for (int j = 10; j > 0; --j) {
            total--;
        }
        return total;
    }

    int[] values = new int[] {1, 2, 3};

    int first() {
        return values[0] + values[values.length - 1];
    }
}
