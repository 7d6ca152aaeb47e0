package fixtures.broken;

public class Broken {
    public int good(int a, int b) {
        return a + b;
    }

    public int bad(int a {
        int x = a +* 3;
        if (x > 2 {
            return x;
        }
        return a;
    }

    public boolean alsoGood(boolean flag) {
        return !flag && true;
    }
}
