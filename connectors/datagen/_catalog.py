"""Small fixed vocabularies the generator draws from.

Region codes are real GB/T 2260 codes (mostly Changzhou, Jiangsu); institution codes and
card BINs are realistic in shape but the data built from them is entirely synthetic.
"""

from __future__ import annotations

#: Birthplace region codes for resident ids, with relative weights.
BIRTH_REGIONS: tuple[tuple[str, int], ...] = (
    ("320402", 14),  # Changzhou Tianning
    ("320404", 13),  # Changzhou Zhonglou
    ("320411", 14),  # Changzhou Xinbei
    ("320412", 18),  # Changzhou Wujin
    ("320413", 6),   # Changzhou Jintan
    ("320481", 6),   # Liyang
    ("320421", 4),   # former Wujin county code, still on older ids
    ("320102", 2),   # Nanjing Xuanwu
    ("320282", 2),   # Yixing
    ("320506", 2),   # Suzhou Wuzhong
    ("321102", 2),   # Zhenjiang Jingkou
    ("340104", 3),   # Hefei Shushan
    ("341221", 3),   # Linquan, Anhui
    ("410102", 2),   # Zhengzhou Zhongyuan
    ("412721", 2),   # Fugou, Henan
    ("513022", 2),   # Xuanhan, Sichuan
    ("362121", 1),   # Ganxian, Jiangxi
    ("310115", 1),   # Shanghai Pudong
)

#: Employer district codes, with relative weights.
EMPLOYER_DISTRICTS: tuple[tuple[str, int], ...] = (
    ("320402", 20), ("320404", 18), ("320411", 24), ("320412", 24),
    ("320413", 5), ("320481", 5), ("320102", 1), ("320506", 1), ("310115", 1),
)

#: Common surnames, most frequent first (weights fall off with rank).
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董"
    "袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟"
    "熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴莫孔汤"
)
GIVEN_MALE = "伟强磊军洋勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林阳建国志文亮成峰东"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀燕玲桂丹萍红玉兰琳雪婷慧莹倩晶颖洁佳欣怡琪雯梦悦璐晨蕾月露瑶"
GIVEN_NEUTRAL = "子一嘉睿思雨晓天诗安可心梓宏海春"

#: Degree labels by level (``degree_level`` 0-4) and the diploma level digit used in
#: certificate numbers (1 doctor, 2 master, 5 bachelor, 6 associate).
DEGREES = ("none", "associate", "bachelor", "master", "doctor")
DEGREE_CERT_DIGIT = {1: "6", 2: "5", 3: "2", 4: "1"}
#: Typical age at graduation per degree level.
GRADUATION_AGE = {1: 21, 2: 22, 3: 25, 4: 29}

#: Institutions (name, 5-digit institution code) by the highest degree they award here.
VOCATIONAL = (
    ("常州信息职业技术学院", "13101"), ("常州工程职业技术学院", "13102"),
    ("常州机电职业技术学院", "13103"), ("常州纺织服装职业技术学院", "13104"),
    ("江苏城市职业学院", "13105"),
)
UNIVERSITIES = (
    ("常州大学", "10292"), ("江苏理工学院", "11463"), ("常州工学院", "11055"),
    ("南京大学", "10284"), ("东南大学", "10286"), ("苏州大学", "10285"),
    ("江南大学", "10295"), ("南京理工大学", "10288"), ("河海大学", "10294"),
    ("扬州大学", "11117"),
)
GRADUATE_SCHOOLS = (
    ("南京大学", "10284"), ("东南大学", "10286"), ("南京航空航天大学", "10287"),
    ("复旦大学", "10246"), ("上海交通大学", "10248"), ("浙江大学", "10335"),
    ("苏州大学", "10285"), ("河海大学", "10294"), ("常州大学", "10292"),
)
MAJORS = (
    "计算机科学与技术", "软件工程", "机械设计制造及其自动化", "电气工程及其自动化",
    "会计学", "金融学", "土木工程", "工商管理", "汉语言文学", "英语", "临床医学",
    "法学", "化学工程与工艺", "材料科学与工程", "市场营销", "数学与应用数学",
)

#: UnionPay debit BINs (prefix, total card length, weight).
CARD_BINS: tuple[tuple[str, int, int], ...] = (
    ("622202", 19, 18), ("621226", 19, 8), ("622848", 19, 14), ("621700", 19, 12),
    ("621661", 19, 8), ("622262", 19, 6), ("622588", 16, 8), ("621483", 16, 4),
    ("622908", 18, 5), ("623166", 19, 7), ("621098", 19, 4), ("625965", 17, 1),
)

#: Median monthly income (CNY) by degree level.
INCOME_MEDIAN = {0: 5200.0, 1: 6500.0, 2: 8600.0, 3: 12500.0, 4: 16000.0}
