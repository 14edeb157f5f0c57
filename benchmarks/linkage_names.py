"""Names, ZIP codes and nicknames for :mod:`benchmarks.linkage`'s population.

Composed for the benchmark: common US given and family names in roughly
decreasing frequency (drawn with a Zipf skew), the Bronx's many Hispanic family
names, and a generated long tail, so that as in a real city most people share
their family name with many others and some have a rare one.
"""

from __future__ import annotations

import itertools
import random
from typing import Final


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FEMALE_NAMES: Final = _words(
    """
Maria Mary Jennifer Patricia Linda Elizabeth Barbara Susan Jessica Sarah Karen Nancy
Lisa Margaret Betty Sandra Ashley Kimberly Emily Donna Michelle Dorothy Carol Amanda
Melissa Deborah Stephanie Rebecca Sharon Laura Cynthia Kathleen Amy Angela Shirley
Anna Brenda Pamela Emma Nicole Helen Samantha Katherine Christine Debra Rachel Carolyn
Janet Catherine Ana Carmen Rosa Yolanda Gloria Luz Guadalupe Jasmine Destiny Aaliyah
Keisha Tanisha Ebony Latoya Shanice Brianna Kayla Alexandra Victoria Abigail Sophia
Isabella Olivia Mia Camila Valentina Daniela Gabriela Andrea Mariana Lucia Fatima
Aisha Mei Linh Priya Esperanza Josefina Teresa Christina Margarita Marisol Yesenia
Ramona Dolores Altagracia Milagros Juana Francisca Antonia Leticia Veronica Diana
María Sofía Inés Raquel Miriam Ruth Esther Naomi Alicia Beatriz
"""
)

MALE_NAMES: Final = _words(
    """
James Robert John Michael David William Richard Joseph Thomas Charles Christopher
Daniel Matthew Anthony Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian
George Timothy Ronald Edward Jason Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan
Stephen Larry Justin Scott Brandon Benjamin Samuel Gregory Alexander Frank Patrick
Raymond Jack Dennis Jerry Jose Luis Carlos Juan Miguel Angel Jesus Pedro Rafael
Manuel Francisco Antonio Ramon Hector Victor Eduardo Alberto Roberto Fernando Ricardo
Javier Guillermo Ignacio Julio Andres Santiago Mateo Diego Malik Jamal Darnell Tyrone
Andre Marcus Terrell DeShawn Jalen Kareem Omar Mohammed Ibrahim Kwame Kofi Wei Minh
Tuan Raj Arjun Elijah Isaiah Josiah Noah Liam Ethan Aiden Dylan Nathaniel Zachary
José Jesús Ángel Joaquín Ruben Felix Wilfredo Israel Moises Xavier
"""
)

FAMILY_NAMES: Final = _words(
    """
Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Thomas Taylor Moore
Jackson Martin Lee Thompson White Harris Clark Lewis Robinson Walker Young Allen King
Wright Scott Hill Green Adams Nelson Baker Hall Campbell Mitchell Carter Roberts
Phillips Evans Turner Parker Collins Edwards Stewart Morris Murphy Cook Rogers Morgan
Cooper Peterson Reed Bailey Bell Kelly Howard Ward Cox Richardson Wood Watson Brooks
Bennett Gray James Hughes Price Sanders Myers Long Ross Foster Powell Jenkins Perry
Russell Sullivan Butler Barnes Fisher Henderson Coleman Simmons Patterson Jordan
Reynolds Hamilton Graham Wallace Cole West Owens Washington Bryant Alexander Griffin
Hayes Ford Marshall Gibson Ellis Wells Freeman Webb Tucker Porter Hunter Hicks
Crawford Henry Boyd Mason Kennedy Warren Dixon Burns Gordon Shaw Holmes Rice Robertson
Hunt Black Daniels Palmer Mills Grant Knight Ferguson Stone Hawkins Dunn Perkins
Hudson Spencer Stephens Payne Pierce Berry Matthews Arnold Wagner Willis Ray Watkins
Olson Carroll Duncan Snyder Hart Cunningham Bradley Lane Andrews Harper Fox Riley
Armstrong Carpenter Weaver Greene Lawrence Elliott Chavez Sims Austin Peters Kelley
Franklin Lawson Fields Ryan Schmidt Carr Johnston Nguyen Tran Le Pham Kim Park Chen
Wang Li Zhang Liu Huang Singh Patel Khan Ali Ahmed Cohen Levy Friedman Goldberg
O'Brien O'Connor O'Neill McCarthy McDonald Fitzgerald Murray Quinn Byrne Walsh
Okafor Mensah Diallo Traore Owusu Boateng Asante Mbeki
"""
)

HISPANIC_FAMILY_NAMES: Final = _words(
    """
Rodriguez Rivera Martinez Garcia Hernandez Lopez Gonzalez Perez Sanchez Ramirez
Torres Flores Diaz Cruz Reyes Morales Ortiz Gomez Vasquez Castillo Jimenez Ruiz
Alvarez Romero Mendoza Medina Santiago Rosario Colon Vargas Castro Guzman Ramos
Herrera Soto Delgado Pena Aguilar Figueroa Nunez Rios Acosta Marrero Velez Vega
Pagan Burgos Quinones Rosa Serrano Cabrera Feliz Mejia Almonte Batista Polanco
Tavarez Paulino Genao Ventura Espinal Peralta Abreu Familia Guerrero Cordero
García López Pérez Martínez Núñez Peña Muñoz Ramírez Díaz Gómez Jiménez
"""
)

#: Nicknames hospitals record for a formal name; some are not in the network's
#: table (Manny, Lizzie, Gabby, Rafa, Kat...), as in life.
NICKNAMES_IN_USE: Final[dict[str, tuple[str, ...]]] = {
    "Robert": ("Bob", "Bobby", "Rob"), "William": ("Bill", "Will", "Billy"),
    "James": ("Jim", "Jimmy"), "John": ("Jack", "Johnny"), "Michael": ("Mike", "Mikey"),
    "Richard": ("Rick", "Dick"), "Joseph": ("Joe", "Joey"), "Thomas": ("Tom", "Tommy"),
    "Charles": ("Charlie", "Chuck"), "Christopher": ("Chris",), "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",), "Anthony": ("Tony",), "Donald": ("Don",), "Steven": ("Steve",),
    "Andrew": ("Andy", "Drew"), "Joshua": ("Josh",), "Kenneth": ("Ken", "Kenny"),
    "Timothy": ("Tim",), "Ronald": ("Ron",), "Edward": ("Ed", "Eddie", "Ted"),
    "Jeffrey": ("Jeff",), "Jacob": ("Jake",), "Nicholas": ("Nick",),
    "Jonathan": ("Jon",), "Benjamin": ("Ben",), "Samuel": ("Sam",),
    "Gregory": ("Greg",), "Alexander": ("Alex",), "Patrick": ("Pat",),
    "Raymond": ("Ray",), "Zachary": ("Zach",), "Nathaniel": ("Nate",),
    "Jose": ("Pepe",), "José": ("Pepe",), "Francisco": ("Paco", "Pancho"),
    "Manuel": ("Manny",), "Rafael": ("Rafa",), "Guillermo": ("Memo",),
    "Eduardo": ("Lalo",), "Ignacio": ("Nacho",), "Alberto": ("Beto",), "Jesus": ("Chuy",),
    "Elizabeth": ("Liz", "Beth", "Lizzie"), "Jennifer": ("Jen", "Jenny"),
    "Patricia": ("Pat", "Patty"), "Margaret": ("Maggie", "Peggy"), "Susan": ("Sue",),
    "Kimberly": ("Kim",), "Deborah": ("Debbie",), "Rebecca": ("Becky",),
    "Pamela": ("Pam",), "Katherine": ("Kate", "Katie", "Kat"), "Samantha": ("Sam",),
    "Cynthia": ("Cindy",), "Kathleen": ("Kathy",), "Amanda": ("Mandy",),
    "Abigail": ("Abby",), "Victoria": ("Vicky", "Tori"), "Alexandra": ("Alex",),
    "Gabriela": ("Gabby",), "Guadalupe": ("Lupe",), "Christina": ("Chris", "Tina"),
    "Sandra": ("Sandy",), "Barbara": ("Barb",), "Angela": ("Angie",),
}  # fmt: skip

#: ZIP codes of the Bronx and Manhattan (residential ones).
ZIP_CODES: Final = (
    *(str(z) for z in range(10451, 10476)),
    *(f"{z:05d}" for z in (10001, 10002, 10003, 10009, 10010, 10011, 10012, 10013, 10014)),
    *(f"{z:05d}" for z in (10016, 10019, 10021, 10023, 10024, 10025, 10026, 10027, 10028)),
    *(f"{z:05d}" for z in (10029, 10030, 10031, 10032, 10033, 10034, 10035, 10037, 10039)),
    "10040",
)

_ONSETS: Final = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
                  "br", "ch", "dr", "gr", "kr", "sh", "st", "tr")  # fmt: skip
_VOWELS: Final = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
_CODAS: Final = ("", "", "", "n", "r", "l", "s", "m", "k", "t")


def tail_name(rng: random.Random, syllables: int) -> str:
    """A generated name of the long tail (``Brelomak``): rare, and rarely twice."""
    parts = [
        rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)
    ]
    return "".join(parts).capitalize()


def zipf(names: tuple[str, ...], exponent: float = 0.6) -> tuple[list[str], list[float]]:
    """The names and their cumulative weights, the n-th name weighing 1/n^exponent.

    With 0.6 the commonest given name is about 5% of people of its sex and the
    ten commonest about 20% (as among the older cohorts in the US Social Security
    name counts); the ten commonest family names of each list are about 20% of
    people, more than in the US Census surname counts: collisions are, if
    anything, more frequent here than in a real city.
    """
    weights = [1 / (rank**exponent) for rank in range(1, len(names) + 1)]
    return list(names), list(itertools.accumulate(weights))
